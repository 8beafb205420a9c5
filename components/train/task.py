"""train: a trainer (`python -m trainers.llm` or `trainers.vlm`) on prepared shards, run as its
own process, as it runs in a CustomJob. The trainer re-launches itself under torchrun when more
than one process per node is asked for, which a KFP executor process must not do to itself.

    metadata = train(argv=[...], trainer="vlm", output_dir="out/model", checkpoint_dir="out/ckpt")
"""

from __future__ import annotations

import json
import os
import sys

from components.common import trainer_steps, use_run_group
from components.train.process import TrainerFailed, run_trainer  # noqa: F401 - re-exported
from trainers.common import storage
from trainers.common.logs import log
from trainers.common.outputs import METADATA_FILE


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
    use_run_group(run_group, wandb_dir, step="train")
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
    module = trainer_steps(trainer).module
    log(f"train: python -m {module} " + " ".join(argv))
    # Exits with the trainer's status when it fails: 143 after SIGTERM is a preemption.
    run_trainer([sys.executable, "-m", module, *argv], env=env, module=module)
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
