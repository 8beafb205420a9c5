"""Run `python -m trainers.llm` (or `trainers.vlm`) in a child process, as a CustomJob would, and
read what it saved.

`kill_at` runs the trainer with a step callback that signals its own process after that step:
a real SIGTERM (handled, checkpointed) or SIGKILL (no chance to save), at a known step.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Small enough for seconds per run, big enough to have several packed rows per batch.
TINY = [
    "--preset",
    "debug",
    "--set",
    "data.synthetic_examples=600",
    "--set",
    "data.seq_len=128",
    "--set",
    "model.max_position_embeddings=128",
    "--set",
    "train.exact_match_examples=0",
    "--set",
    "train.eval_every=0",
    "--set",
    "train.log_every=2",
    "--set",
    "train.threads=1",
    "--set",
    "wandb.enabled=false",
]

# The VLM debug preset cut to seconds: few examples, no generation, one thread, no workers.
TINY_VLM = [
    "--preset",
    "debug",
    "--set",
    "data.synthetic_examples=200",
    "--set",
    "data.num_workers=0",
    "--set",
    "optim.warmup_steps=1",
    "--set",
    "train.exact_match_examples=0",
    "--set",
    "train.eval_every=0",
    "--set",
    "train.log_every=1",
    "--set",
    "train.threads=1",
    "--set",
    "wandb.enabled=false",
]

_KILL_SCRIPT = """
import os, signal, sys
from {module}.__main__ import main

def kill_at(step):
    if step == {step}:
        os.kill(os.getpid(), signal.{signal})

sys.exit(main(sys.argv[1:], callbacks=[kill_at]))
"""


def trainer_env(**extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        OMP_NUM_THREADS="1",
    )
    env.pop("WANDB_API_KEY", None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_env(num_procs: int = 2, **extra: str) -> dict[str, str]:
    """The environment for the trainer's own torchrun relaunch: gloo on CPU, loopback rendezvous."""
    return trainer_env(
        LIFTOFF_NPROC_PER_NODE=str(num_procs),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        **extra,
    )


def run_trainer(
    args: list[str],
    *,
    env: dict | None = None,
    kill_at: tuple[int, str] | None = None,
    cwd: Path | None = None,
    module: str = "trainers.llm",
) -> subprocess.CompletedProcess:
    if kill_at is None:
        command = [sys.executable, "-m", module, *args]
    else:
        script = _KILL_SCRIPT.format(module=module, step=kill_at[0], signal=kill_at[1])
        command = [sys.executable, "-c", script, *args]
    return subprocess.run(
        command,
        env=env or trainer_env(),
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def load_weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))
