"""Checkpoints under DDP (gloo, 2 CPU processes through the trainer's own torchrun relaunch):
every rank's RNG file is listed in the commit marker, and when one rank's file of the newest
checkpoint is damaged, all ranks fall back together to the one before and end bitwise where
the uninterrupted run ended.

Run: `.venv/bin/pytest -q tests/trainers/test_ddp_resume.py` (~25 s: two DDP runs).
"""

import json
import os

import torch

from tests.support.trainer_runs import TINY, ddp_env, load_weights, run_trainer
from trainers.common import checkpoint

STEPS = [
    "--max-steps",
    "4",
    "--set",
    "train.global_batch_size=8",
    "--set",
    "train.micro_batch_size=4",
    "--set",
    "checkpoint.every_steps=2",
]


def test_a_damaged_rank_file_makes_every_rank_fall_back_and_resume_exactly(tmp_path):
    args = [*TINY, *STEPS, "--output-dir", str(tmp_path / "model")]
    args += ["--checkpoint-dir", str(tmp_path / "ckpt")]
    first = run_trainer(args, env=ddp_env(2))
    assert first.returncode == 0, first.stderr[-3000:]
    finished = load_weights(tmp_path / "model")
    newest = tmp_path / "ckpt" / "step-00000004"
    marker = json.loads((newest / checkpoint.MARKER).read_text())
    assert marker["world_size"] == 2
    assert set(marker["files"]) == {
        checkpoint.STATE,
        "rank-00000.safetensors",
        "rank-00001.safetensors",
    }

    os.truncate(newest / "rank-00001.safetensors", 64)
    again = run_trainer(args, env=ddp_env(2))

    assert again.returncode == 0, again.stderr[-3000:]
    assert f"checkpoint {newest} is damaged: rank-00001.safetensors has 64 bytes" in again.stderr
    assert f"resumed from {tmp_path / 'ckpt' / 'step-00000002'} at step 2" in again.stdout
    resumed = load_weights(tmp_path / "model")
    assert finished.keys() == resumed.keys() and finished
    for name, value in finished.items():
        assert torch.equal(resumed[name], value), name
