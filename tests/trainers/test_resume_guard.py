"""What a run resumes, driven through the one loop by test_loop's toy task (milliseconds a
run): the newest intact checkpoint of the same run, exactly; a damaged one is removed with a
warning naming it and the one before it resumed; one of another run is refused in one line
naming the difference; `checkpoint.resume=false` starts over; each run has its own default
directory; the fingerprint counts what changes the math and nothing else.

Run: `.venv/bin/pytest -q tests/trainers/test_resume_guard.py`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from tests.trainers.test_loop import ToyConfig, ToyData, ToyTask
from trainers.common import checkpoint, loop, resumable
from trainers.common.config import ConfigError, apply_overrides
from trainers.common.distributed import Dist
from trainers.common.preemption import StopFlag
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig
from trainers.common.tracking import NullTracker


def _cfg(tmp_path, *, steps=6, ckpt="ckpt", **optim) -> ToyConfig:
    return ToyConfig(
        output_dir=str(tmp_path / "model"),
        data=ToyData(),
        optim=OptimConfig(**{"lr": 0.1, "warmup_steps": 1, **optim}),
        train=TrainConfig(max_steps=steps, global_batch_size=8, micro_batch_size=8, eval_every=0),
        checkpoint=CheckpointConfig(
            dir=str(tmp_path / ckpt) if ckpt else "", every_steps=2, keep_last=3
        ),
    )


def _train(cfg, *, until: int | None = None) -> loop.Run:
    """Resume (or start), then train to `until` (default: max_steps)."""
    run = loop.build_run(cfg, ToyTask, dist=Dist(), tracker=NullTracker())
    run.task.start(run, resumed=checkpoint.resume_run(run))
    if until is not None:
        run.cfg = dataclasses.replace(
            run.cfg, train=dataclasses.replace(cfg.train, max_steps=until)
        )
    loop.run_steps(run, StopFlag())
    return run


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> torch.Tensor:
    return _train(_cfg(tmp_path_factory.mktemp("ref"))).task.model.weight.detach().clone()


DAMAGE = {
    "truncated state": (checkpoint.STATE, lambda p: os.truncate(p, os.path.getsize(p) // 2)),
    "empty state": (checkpoint.STATE, lambda p: os.truncate(p, 0)),
    "missing state": (checkpoint.STATE, os.remove),
    "truncated rank file": (checkpoint.rank_file(0), lambda p: os.truncate(p, 100)),
    "missing rank file": (checkpoint.rank_file(0), os.remove),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_checkpoint_is_removed_and_the_one_before_resumed_exactly(
    tmp_path, reference, damage, capsys
):
    _train(_cfg(tmp_path), until=6)  # checkpoints at steps 2, 4, 6
    root = tmp_path / "ckpt"
    name, harm = DAMAGE[damage]
    harm(str(root / "step-00000006" / name))

    resumed = _train(_cfg(tmp_path))

    warning = f"checkpoint {root / 'step-00000006'} is damaged: {name}"
    assert warning in capsys.readouterr().err
    assert resumed.step == 6 and checkpoint.committed_steps(str(root)) == [2, 4, 6]
    assert torch.equal(resumed.task.model.weight, reference)  # from step 4, exactly
    assert checkpoint.load(str(root / "step-00000006"), rank=0)[0]["step"] == 6  # saved anew


def test_damage_in_every_checkpoint_starts_over(tmp_path):
    _train(_cfg(tmp_path), until=2)
    os.remove(tmp_path / "ckpt" / "step-00000002" / checkpoint.STATE)
    run = loop.build_run(_cfg(tmp_path), ToyTask, dist=Dist(), tracker=NullTracker())
    assert checkpoint.resume_run(run) is False and run.step == 0
    assert checkpoint.committed_steps(str(tmp_path / "ckpt")) == []


def test_another_runs_checkpoint_is_refused_in_one_line_naming_the_difference(tmp_path):
    _train(_cfg(tmp_path), until=4)
    with pytest.raises(ConfigError) as refused:
        _train(_cfg(tmp_path, lr=0.01))
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path / "ckpt") in message
    assert "optim.lr=0.1 there, 0.01 here" in message and "--no-resume" in message
    assert checkpoint.committed_steps(str(tmp_path / "ckpt")) == [2, 4]  # nothing touched


def test_resume_false_starts_over_and_removes_the_old_checkpoints(tmp_path, reference):
    _train(_cfg(tmp_path, lr=0.01), until=4)
    cfg = _cfg(tmp_path)
    cfg = dataclasses.replace(cfg, checkpoint=dataclasses.replace(cfg.checkpoint, resume=False))
    fresh = _train(cfg)
    assert torch.equal(fresh.task.model.weight, reference)  # trained from step 0 at lr 0.1
    marker = checkpoint.read_marker(str(tmp_path / "ckpt" / "step-00000002"))
    assert marker["fingerprint"]["config"]["optim.lr"] == 0.1  # ours, not the old run's


def test_more_steps_or_other_logging_still_resume(tmp_path, reference):
    _train(_cfg(tmp_path), until=4)
    cfg = apply_overrides(_cfg(tmp_path, steps=6), ["train.log_every=1", "train.eval_every=3"])
    resumed = _train(cfg)
    assert resumed.task.started == [True]
    assert torch.equal(resumed.task.model.weight, reference)


def test_the_fingerprint_counts_what_changes_the_math():
    cfg = _cfg(Path("/nowhere"))
    fields = resumable.math_fields(cfg)
    assert {"optim.lr", "optim.warmup_steps", "train.global_batch_size", "train.seed"} <= set(
        fields
    )
    assert "train.micro_batch_size" in fields and "train.precision" in fields
    for ignored in ("train.max_steps", "train.log_every", "checkpoint.dir", "wandb.project"):
        assert ignored not in fields
    assert "output_dir" not in fields and "data.train" not in fields  # the records count


def test_each_run_has_its_own_default_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _train(_cfg(tmp_path, ckpt=""), until=2)
    again = _train(_cfg(tmp_path, ckpt=""), until=4)
    other = _train(_cfg(tmp_path, ckpt="", lr=0.01), until=2)
    root = first.cfg.checkpoint.dir
    assert root.startswith(f"{resumable.DEFAULT_ROOT}/toy-")
    assert again.cfg.checkpoint.dir == root and again.task.started == [True]  # same run
    assert other.cfg.checkpoint.dir != root and other.task.started == [False]  # its own
    assert sorted(os.listdir(tmp_path / "outputs" / "checkpoints")) == sorted(
        os.path.basename(r) for r in (root, other.cfg.checkpoint.dir)
    )


def test_another_process_count_has_its_own_default_directory(tmp_path):
    # The README's VLM sequence: the same command on 1 process, then with
    # LIFTOFF_NPROC_PER_NODE=2; a checkpoint's RNG states are per rank, so the second is its
    # own run, not a refused resume of the first.
    cfg = _cfg(tmp_path, ckpt="")
    roots = [resumable.default_root(cfg, trainer=ToyTask, world_size=n) for n in (1, 2, 2)]
    assert roots[0] != roots[1] == roots[2]
    assert all(r.startswith(f"{resumable.DEFAULT_ROOT}/toy-") for r in roots)
