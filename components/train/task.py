"""train: a trainer (`python -m trainers.llm` or `trainers.vlm`) on prepared shards, run as its
own process, as it runs in a CustomJob. The trainer re-launches itself under torchrun when more
than one process per node is asked for, which a KFP executor process must not do to itself.

    metadata = train(argv=[...], trainer="vlm", output_dir="out/model", checkpoint_dir="out/ckpt")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from components.common import check_trainer, use_run_group
from trainers.common import storage
from trainers.llm.outputs import METADATA_FILE  # trainers.vlm writes the same file


class TrainerFailed(RuntimeError):
    def __init__(self, returncode: int, *, module: str) -> None:
        super().__init__(f"train: python -m {module} exited with status {returncode}")
        self.returncode = returncode


def train(
    *,
    argv: list[str],
    output_dir: str,
    trainer: str = "llm",
    checkpoint_dir: str = "",
    nproc_per_node: int = 1,
    run_group: str = "",
    wandb_dir: str = "",
) -> dict:
    """Run the trainer; return the `training_metadata.json` it wrote next to the model."""
    use_run_group(run_group, wandb_dir)
    argv = [*argv, "--output-dir", output_dir]
    # Vertex sets AIP_CHECKPOINT_DIR from the CustomJob's base output directory. Without
    # either, checkpoints go beside the model, which a restarted job finds again.
    checkpoint_dir = (
        checkpoint_dir or os.environ.get("AIP_CHECKPOINT_DIR") or default_ckpt(output_dir)
    )
    argv += ["--checkpoint-dir", checkpoint_dir]
    env = dict(os.environ)
    if nproc_per_node > 1:
        env["LIFTOFF_NPROC_PER_NODE"] = str(nproc_per_node)
    module = f"trainers.{check_trainer(trainer)}"
    print(f"train: python -m {module} " + " ".join(argv), flush=True)
    done = subprocess.run([sys.executable, "-m", module, *argv], env=env)
    if done.returncode:
        raise TrainerFailed(done.returncode, module=module)
    return json.loads(storage.read_text(storage.join(output_dir, METADATA_FILE)))


def default_ckpt(output_dir: str) -> str:
    return output_dir.rstrip("/").rsplit("/", 1)[0] + "/checkpoints"


def final_metrics(metadata: dict) -> dict[str, float]:
    """The trainer's last logged values, named for a KFP Metrics artifact."""
    metrics = {k.replace("/", "_"): float(v) for k, v in metadata["final"].items()}
    metrics["steps"] = float(metadata["steps"])
    metrics["tokens_seen"] = float(metadata["tokens_seen"])
    if "images_seen" in metadata:  # the VLM trainer's
        metrics["images_seen"] = float(metadata["images_seen"])
    return metrics
