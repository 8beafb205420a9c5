"""A run that diverges stops in one line naming the step, writes no model and commits no
checkpoint of non-finite weights (issue 15: `optim.lr=1e9` and `inf` used to train, exit 0
and save a model of NaNs); with `train.skip_nonfinite_steps` a bounded number of such steps
is skipped instead. The toy task of test_loop gets a NaN loss at chosen steps.

Run: `.venv/bin/pytest -q tests/trainers/test_divergence.py`.
"""

from __future__ import annotations

import pytest
import torch

from tests.support.trainer_runs import TINY
from tests.trainers.test_loop import ToyConfig, ToyData, ToyTask
from trainers.common import checkpoint, loop
from trainers.common.distributed import Dist
from trainers.common.divergence import Diverged
from trainers.common.preemption import StopFlag
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig
from trainers.common.tracking import NullTracker
from trainers.llm.__main__ import main as llm_main


class NaNToy(ToyTask):
    """The toy task whose loss is NaN at the 1-based steps in `NAN_AT` (one micro-batch a
    step, so the call count is the step)."""

    NAN_AT: set[int] = set()

    def loss(self, engine, batch):
        micro = super().loss(engine, batch)
        if self.calls in self.NAN_AT:
            micro.loss = micro.loss * float("nan")
        return micro


def _run(tmp_path, *, nan_at: set[int], skips: int = 0, every: int = 0):
    NaNToy.NAN_AT = nan_at
    cfg = ToyConfig(
        output_dir=str(tmp_path / "model"),
        data=ToyData(),
        optim=OptimConfig(lr=0.1, warmup_steps=1),
        train=TrainConfig(
            max_steps=6, global_batch_size=8, micro_batch_size=8, skip_nonfinite_steps=skips
        ),
        checkpoint=CheckpointConfig(dir=str(tmp_path / "ckpt"), every_steps=every),
    )
    run = loop.build_run(cfg, NaNToy, dist=Dist(), tracker=NullTracker())
    run.task.start(run, resumed=checkpoint.resume_run(run))
    return run


def test_a_nan_loss_stops_the_run_naming_the_step(tmp_path):
    run = _run(tmp_path, nan_at={3}, every=1)
    with pytest.raises(Diverged) as stopped:
        loop.run_steps(run, StopFlag())
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("training diverged at step 3/6: the loss is nan (optim.lr=0.1)")
    assert run.step == 2 and torch.isfinite(run.task.model.weight).all()
    assert checkpoint.committed_steps(str(tmp_path / "ckpt")) == [1, 2]


def test_skipped_steps_are_bounded_counted_and_checkpointed(tmp_path, capsys):
    run = _run(tmp_path, nan_at={2}, skips=1, every=2)
    loop.run_steps(run, StopFlag())
    assert run.step == 6 and run.skipped_steps == 1
    assert "step 2/6: the loss is nan; its update is skipped (1 of" in capsys.readouterr().err
    assert torch.isfinite(run.task.model.weight).all()
    assert loop.metadata(run)["skipped_steps"] == 1
    assert checkpoint.load(str(tmp_path / "ckpt" / "step-00000006"), rank=0)[0]["skipped_steps"]

    # The count comes back with a resume: one more NaN step is one too many.
    again = _run(tmp_path, nan_at=set(), skips=1, every=2)
    assert again.step == 6 and again.skipped_steps == 1


def test_a_skipped_step_leaves_the_weights_as_they_were(tmp_path):
    run = _run(tmp_path, nan_at={2}, skips=2)
    loop.train_step(run)
    before = run.task.model.weight.detach().clone()
    loop.train_step(run)  # step 2: NaN, skipped
    assert run.step == 2 and torch.equal(run.task.model.weight, before)
    loop.train_step(run)
    assert not torch.equal(run.task.model.weight, before)  # guard: step 3 trains


def test_more_non_finite_steps_than_allowed_stop_the_run(tmp_path):
    run = _run(tmp_path, nan_at={2, 4}, skips=1)
    with pytest.raises(Diverged, match=r"at step 4/6: the loss is nan .*\(1 skipped so far\)"):
        loop.run_steps(run, StopFlag())


def test_non_finite_weights_are_never_checkpointed_or_written(tmp_path):
    run = _run(tmp_path, nan_at=set())
    loop.train_step(run)
    with torch.no_grad():
        run.task.model.weight[0, 1] = float("inf")
    with pytest.raises(Diverged, match="after step 1 the weights are not finite .*weight"):
        checkpoint.save_run(run)
    with pytest.raises(Diverged):
        loop.finish(run)
    assert checkpoint.committed_steps(str(tmp_path / "ckpt")) == []
    assert not (tmp_path / "model").exists()


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def test_a_huge_lr_stops_the_llm_trainer_in_one_line_and_writes_nothing(tmp_path, capsys):
    out = ["--output-dir", str(tmp_path / "model"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    steps = ["--max-steps", "6", "--set", "checkpoint.every_steps=1", "--set", "optim.lr=1e9"]
    assert llm_main([*TINY, *out, *steps]) == 1
    line = _error_line(capsys.readouterr().err)
    assert "training diverged at step" in line and "Traceback" not in line
    assert not (tmp_path / "model").exists()
    for step in checkpoint.committed_steps(str(tmp_path / "ckpt")):  # what came before, finite
        shared, _ = checkpoint.load(checkpoint.step_dir(str(tmp_path / "ckpt"), step), rank=0)
        assert all(torch.isfinite(t).all() for t in shared["model"].values())


def test_an_infinite_lr_is_a_config_error(tmp_path, capsys):
    assert llm_main([*TINY, "--set", "optim.lr=inf", "--output-dir", str(tmp_path / "m")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line == "error: optim.lr=inf is invalid: must be a finite number"
