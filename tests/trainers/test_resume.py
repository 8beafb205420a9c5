"""Exact resume: a run stopped by SIGTERM, or killed by SIGKILL, then resumed, ends bitwise
identical to an uninterrupted run with the same seed (CPU)."""

import pytest
import torch

from tests.support.trainer_runs import TINY, load_weights, run_trainer
from trainers.common import checkpoint
from trainers.common.preemption import PREEMPTED_EXIT_CODE

STEPS = ["--max-steps", "10", "--seed", "3", "--set", "checkpoint.every_steps=4"]


def _args(tmp, name):
    return [
        *TINY,
        *STEPS,
        "--output-dir",
        str(tmp / name / "model"),
        "--checkpoint-dir",
        str(tmp / name / "ckpt"),
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    done = run_trainer(_args(tmp, "ref"))
    assert done.returncode == 0, done.stderr[-2000:]
    return load_weights(tmp / "ref" / "model")


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"


def test_sigterm_saves_exits_nonzero_and_resumes_exactly(tmp_path, reference):
    args = _args(tmp_path, "term")
    stopped = run_trainer(args, kill_at=(6, "SIGTERM"))
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-2000:]
    assert "stopped by SIGTERM after step 6" in stopped.stderr
    assert checkpoint.committed_steps(str(tmp_path / "term" / "ckpt")) == [4, 6]
    assert not (tmp_path / "term" / "model").exists()

    resumed = run_trainer(args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "at step 6" in resumed.stdout
    _assert_bitwise_equal(reference, load_weights(tmp_path / "term" / "model"))


def test_sigkill_resumes_from_last_committed_checkpoint_exactly(tmp_path, reference):
    args = _args(tmp_path, "kill")
    killed = run_trainer(args, kill_at=(7, "SIGKILL"))
    assert killed.returncode == -9
    assert checkpoint.committed_steps(str(tmp_path / "kill" / "ckpt")) == [4]

    resumed = run_trainer(args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "at step 4" in resumed.stdout
    _assert_bitwise_equal(reference, load_weights(tmp_path / "kill" / "model"))


def test_interrupted_run_differs_without_resume(tmp_path, reference):
    """Guard: a fresh run with another seed is not bitwise equal, so the checks above can fail."""
    args = [
        *TINY,
        "--max-steps",
        "10",
        "--seed",
        "4",
        "--output-dir",
        str(tmp_path / "m"),
        "--checkpoint-dir",
        str(tmp_path / "c"),
    ]
    other = run_trainer(args)
    assert other.returncode == 0, other.stderr[-2000:]
    weights = load_weights(tmp_path / "m")
    assert any(not torch.equal(reference[k], weights[k]) for k in reference)
