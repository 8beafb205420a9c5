"""trainers.common.checkpoint in one process: save/load round trip, torn saves never loaded,
pruning, the commit marker's sizes and checksums, damage found on load, fsync before the
marker, no pickle, and RNG capture/restore.

Run: `.venv/bin/pytest -q tests/trainers/test_checkpoint.py`.
"""

from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from trainers.common import storage
from trainers.common.checkpoint import (
    MARKER,
    STATE,
    Damaged,
    capture_rng,
    committed_steps,
    latest_committed,
    load,
    rank_file,
    read_marker,
    restore_rng,
    save,
    step_dir,
)
from trainers.common.config import ConfigError
from trainers.common.distributed import Dist

RANK0 = rank_file(0)


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
    with open(os.path.join(path, STATE), "wb") as f:
        f.write(b"half a state file")
    return path


def _names(root) -> list[str]:
    return sorted(os.listdir(root))


def test_save_then_load_round_trips(tmp_path):
    root = str(tmp_path / "ckpt")
    path = _save(root, 7)
    assert path == step_dir(root, 7) and path.endswith("step-00000007")
    assert sorted(os.listdir(path)) == [MARKER, RANK0, STATE]
    shared, rank_state = load(path, rank=0)
    expected_shared, expected_rank = _state(7)
    assert torch.equal(shared["model"]["w"], expected_shared["model"]["w"])
    assert torch.equal(shared["model"]["b"], expected_shared["model"]["b"])
    assert shared["progress"] == {"step": 7, "rows_seen": 56}
    assert rank_state == expected_rank  # the python RNG state comes back as tuples


def test_the_marker_records_each_files_size_and_crc32c(tmp_path):
    path = _save(str(tmp_path), 3)
    marker = json.loads((tmp_path / "step-00000003" / MARKER).read_text())
    assert marker["format"] == 2 and marker["step"] == 3 and marker["world_size"] == 1
    assert set(marker["files"]) == {STATE, RANK0}
    for name, recorded in marker["files"].items():
        stored = storage.checksum(os.path.join(path, name))
        assert recorded == {"size": stored.size, "crc32c": stored.crc32c}
        assert recorded["size"] == os.path.getsize(os.path.join(path, name)) > 0


def test_a_checkpoint_holds_no_pickle(tmp_path):
    path = _save(str(tmp_path), 1)
    for name in (STATE, RANK0):
        data = (tmp_path / "step-00000001" / name).read_bytes()
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        assert "liftoff.state" in header["__metadata__"]  # the non-tensor state, as JSON
        assert not data.startswith((b"PK", b"\x80"))  # neither torch.save's zip nor a pickle
    assert load(path, rank=0)[0]["progress"]["step"] == 1


def test_load_for_a_rank_that_did_not_save_is_refused(tmp_path):
    path = _save(str(tmp_path), 1)
    with pytest.raises(ConfigError, match="RNG states of 1 processes, not 4"):
        load(path, rank=3)  # the world grew: rank 3 has no RNG states to restore


def test_empty_or_missing_root_has_no_checkpoint(tmp_path):
    assert latest_committed(str(tmp_path / "nothing")) is None
    assert latest_committed(str(tmp_path)) is None


def test_torn_save_is_never_latest_even_if_newer(tmp_path):
    root = str(tmp_path)
    _save(root, 3)
    _torn(root, 5)
    assert os.path.exists(os.path.join(step_dir(root, 5), STATE))  # newer and has state
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
    with open(os.path.join(path, "rank-00007.safetensors"), "wb") as f:
        f.write(b"left over by an earlier attempt")
    _save(root, 4)
    assert sorted(os.listdir(path)) == [MARKER, RANK0, STATE]
    assert load(path, rank=0)[0]["progress"]["step"] == 4


def _truncate(path: str) -> None:
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _flip_a_byte(path: str) -> None:
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 1)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))


DAMAGE = {
    "truncated state": (STATE, _truncate, f"{STATE} has .* bytes, not"),
    "empty state": (STATE, lambda p: open(p, "wb").close(), f"{STATE} has 0 bytes"),
    "missing state": (STATE, os.remove, f"{STATE} is missing"),
    "changed state": (STATE, _flip_a_byte, "CRC32C"),
    "truncated rank file": (RANK0, _truncate, f"{RANK0} has .* bytes, not"),
    "missing rank file": (RANK0, os.remove, f"{RANK0} is missing"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damage_is_found_on_load_and_named(tmp_path, damage):
    name, harm, message = DAMAGE[damage]
    path = _save(str(tmp_path), 6)
    harm(os.path.join(path, name))
    with pytest.raises(Damaged, match=message):
        load(path, rank=0)


def test_a_marker_that_is_not_one_is_damage(tmp_path):
    path = _save(str(tmp_path), 2)
    (tmp_path / "step-00000002" / MARKER).write_text('{"format": 2, "st')
    with pytest.raises(Damaged, match="not a commit marker"):
        read_marker(path)


def _fsync_spy(monkeypatch) -> list[tuple[str, bool]]:
    """Every fsync as (the path of its file descriptor, whether a marker existed then)."""
    seen, real = [], os.fsync

    def spy(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        marker = os.path.join(target if os.path.isdir(target) else os.path.dirname(target), MARKER)
        seen.append((target, os.path.exists(marker)))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name fds")
def test_files_and_directory_are_fsynced_before_the_marker(tmp_path, monkeypatch):
    seen = _fsync_spy(monkeypatch)
    path = os.path.realpath(_save(str(tmp_path / "ckpt"), 5))
    before = {target for target, marker_existed in seen if not marker_existed}
    assert {os.path.join(path, STATE), os.path.join(path, RANK0), path} <= before
    assert os.path.join(path, MARKER) in {target for target, _ in seen}  # the marker itself
    assert os.path.realpath(str(tmp_path / "ckpt")) in before  # the step directory's name


class _Payload:
    """What an attacker who can write the bucket would leave: unpickling runs a command."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def test_an_old_pickled_checkpoint_is_refused_and_never_unpickled(tmp_path):
    flag = tmp_path / "pwned"
    path = step_dir(str(tmp_path / "ckpt"), 9)
    os.makedirs(path)
    for name in ("state.pt", "rank-00000.pt"):
        with open(os.path.join(path, name), "wb") as f:
            pickle.dump({"model": _Payload(str(flag))}, f)
    with open(os.path.join(path, MARKER), "w") as f:
        json.dump({"step": 9, "world_size": 1, "time": 0.0}, f)  # the format before this one
    assert committed_steps(str(tmp_path / "ckpt")) == [9]
    with pytest.raises(ConfigError, match="earlier liftoff, as pickles, which are not loaded"):
        load(path, rank=0)
    assert not flag.exists()


def test_state_files_keep_tied_tensors_tuples_and_int_keys(tmp_path):
    weight = torch.randn(4, 2)
    shared = {
        "model": {"embed.weight": weight, "lm_head.weight": weight, "view": weight[1:3]},
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.95)},
        "none": None,
        "flag": True,
        "loss": float("nan"),
    }
    path = save(str(tmp_path), 1, shared, {"rng": capture_rng()}, dist=Dist(), keep_last=1)
    back, _ = load(path, rank=0)
    assert back["model"]["embed.weight"] is back["model"]["lm_head.weight"]  # stored once
    assert torch.equal(back["model"]["view"], weight[1:3])
    assert back["optimizer"]["state"][0]["step"].shape == () and back["optimizer"]["betas"] == (
        0.9,
        0.95,
    )
    assert back["none"] is None and back["flag"] is True and back["loss"] != back["loss"]


def test_what_a_state_file_cannot_hold_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"state\.progress\.when: a set cannot be saved"):
        save(str(tmp_path), 1, {"progress": {"when": {1}}}, {}, dist=Dist(), keep_last=1)


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


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_rng_states_that_cannot_be_restored_refuse_the_resume():
    state = capture_rng() | {"cuda": torch.zeros(16, dtype=torch.uint8)}
    with pytest.raises(ConfigError, match="written with CUDA and this run is without"):
        restore_rng(state)
