"""trainers.common.checkpoint in one process: save/load round trip, torn saves never loaded,
pruning, and RNG capture/restore.

Run: `.venv/bin/pytest -q tests/trainers/test_checkpoint.py`.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from trainers.common.checkpoint import (
    MARKER,
    capture_rng,
    committed_steps,
    latest_committed,
    load,
    restore_rng,
    save,
    step_dir,
)
from trainers.common.distributed import Dist


def _state(step: int) -> tuple[dict, dict]:
    shared = {
        "model": {"w": torch.full((2, 3), float(step)), "b": torch.arange(3.0)},
        "progress": {"step": step, "rows_seen": step * 8},
    }
    return shared, {"rng": {"python": random.getstate()}, "rank": 0}


def _save(root: str, step: int, keep_last: int = 10) -> str:
    return save(root, step, *_state(step), dist=Dist(), keep_last=keep_last)


def _torn(root: str, step: int) -> str:
    """A save cut off before its marker: files present, no COMMITTED."""
    path = step_dir(root, step)
    os.makedirs(path, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(1)}}, os.path.join(path, "state.pt"))
    return path


def _names(root) -> list[str]:
    return sorted(os.listdir(root))


def test_save_then_load_round_trips(tmp_path):
    root = str(tmp_path / "ckpt")
    path = _save(root, 7)
    assert path == step_dir(root, 7) and path.endswith("step-00000007")
    assert sorted(os.listdir(path)) == [MARKER, "rank-00000.pt", "state.pt"]
    shared, rank_state = load(path, rank=0)
    expected_shared, expected_rank = _state(7)
    assert torch.equal(shared["model"]["w"], expected_shared["model"]["w"])
    assert torch.equal(shared["model"]["b"], expected_shared["model"]["b"])
    assert shared["progress"] == {"step": 7, "rows_seen": 56}
    assert rank_state == expected_rank


def test_load_for_a_rank_that_did_not_save_gives_none(tmp_path):
    path = _save(str(tmp_path), 1)
    shared, rank_state = load(path, rank=3)  # the world size changed
    assert shared["progress"]["step"] == 1 and rank_state is None


def test_empty_or_missing_root_has_no_checkpoint(tmp_path):
    assert latest_committed(str(tmp_path / "nothing")) is None
    assert latest_committed(str(tmp_path)) is None


def test_torn_save_is_never_latest_even_if_newer(tmp_path):
    root = str(tmp_path)
    _save(root, 3)
    _torn(root, 5)
    assert os.path.exists(os.path.join(step_dir(root, 5), "state.pt"))  # newer and has state
    assert committed_steps(root) == [3]
    assert latest_committed(root) == step_dir(root, 3)
    # Only torn saves: nothing to resume from.
    assert latest_committed(str(tmp_path / "other")) is None
    _torn(str(tmp_path / "other"), 9)
    assert latest_committed(str(tmp_path / "other")) is None


def test_unrelated_names_are_ignored(tmp_path):
    root = str(tmp_path)
    _save(root, 2)
    os.makedirs(os.path.join(root, "step-9"))  # not 8 digits
    with open(os.path.join(root, "step-00000099"), "w") as f:  # a file, not a step dir
        f.write("x")
    os.makedirs(os.path.join(root, "step-00000050"))
    assert committed_steps(root) == [2]


def test_keep_last_prunes_old_committed_and_older_torn(tmp_path):
    root = str(tmp_path)
    _save(root, 10, keep_last=2)
    _save(root, 20, keep_last=2)
    _torn(root, 15)  # older than the next committed save: removed by it
    _torn(root, 30)  # newer than every committed save: left alone, never loaded
    assert _names(root) == ["step-00000010", "step-00000015", "step-00000020", "step-00000030"]
    _save(root, 25, keep_last=2)
    assert _names(root) == ["step-00000020", "step-00000025", "step-00000030"]
    assert committed_steps(root) == [20, 25]
    assert latest_committed(root) == step_dir(root, 25)
    _save(root, 40, keep_last=1)
    assert _names(root) == ["step-00000040"]


def test_saving_over_a_torn_directory_of_the_same_step(tmp_path):
    root = str(tmp_path)
    path = _torn(root, 4)
    with open(os.path.join(path, "rank-00007.pt"), "wb") as f:
        f.write(b"left over by an earlier attempt")
    _save(root, 4)
    assert sorted(os.listdir(path)) == [MARKER, "rank-00000.pt", "state.pt"]
    assert load(path, rank=0)[0]["progress"]["step"] == 4


def _draws() -> tuple:
    return (
        torch.rand(4).tolist(),
        random.random(),
        np.random.rand(3).tolist(),
        torch.randint(0, 1000, (3,)).tolist(),
    )


def test_capture_restore_rng_repeats_draws():
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    state = capture_rng()
    first = _draws()
    assert _draws() != first  # not vacuous: the generators moved on
    restore_rng(state)
    assert _draws() == first


def test_rng_survives_a_checkpoint(tmp_path):
    state = capture_rng()
    first = _draws()
    path = save(str(tmp_path), 1, {"progress": {}}, {"rng": state}, dist=Dist(), keep_last=1)
    _draws()
    restore_rng(load(path, rank=0)[1]["rng"])
    assert _draws() == first
