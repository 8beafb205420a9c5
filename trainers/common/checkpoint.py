"""Committed checkpoints: one directory per step, a COMMITTED marker written last.

    save(root, step, shared_state, rank_state, dist=d, keep_last=2)
    latest = latest_committed(root)          # None, or the newest directory with a marker
    shared_state, rank_state = load(latest, rank=d.rank)

Object stores (and GCS FUSE) have no atomic rename, so a directory counts only once its marker
exists; a directory without one (a save cut off by SIGKILL) is never loaded and is cleared by
the next save. `shared_state` (model, optimizer, scheduler, progress) is written by rank 0;
`rank_state` (RNG states) by every rank.
"""

from __future__ import annotations

import json
import random
import re
import time

import torch

from trainers.common import storage
from trainers.common.distributed import Dist, barrier

MARKER = "COMMITTED"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def step_dir(root: str, step: int) -> str:
    return storage.join(root, f"step-{step:08d}")


def save(
    root: str, step: int, shared_state: dict, rank_state: dict, *, dist: Dist, keep_last: int
) -> str:
    path = step_dir(root, step)
    if dist.is_main:
        storage.remove_tree(path)  # a torn save of the same step from an earlier attempt
        storage.makedirs(path)
    barrier(dist)
    if dist.is_main:
        _torch_save(shared_state, storage.join(path, "state.pt"))
    _torch_save(rank_state, storage.join(path, f"rank-{dist.rank:05d}.pt"))
    barrier(dist)  # every rank's files exist before the marker says so
    if dist.is_main:
        marker = {"step": step, "world_size": dist.world_size, "time": time.time()}
        storage.write_text(storage.join(path, MARKER), json.dumps(marker))
        prune(root, keep_last=keep_last)
    barrier(dist)
    return path


def committed_steps(root: str) -> list[int]:
    steps = []
    for name in storage.list_names(root):
        match = _STEP_DIR.match(name)
        if match and storage.exists(storage.join(root, name, MARKER)):
            steps.append(int(match.group(1)))
    return sorted(steps)


def latest_committed(root: str) -> str | None:
    steps = committed_steps(root)
    return step_dir(root, steps[-1]) if steps else None


def load(path: str, *, rank: int) -> tuple[dict, dict | None]:
    """The shared state and this rank's state (None when the world size changed)."""
    shared = _torch_load(storage.join(path, "state.pt"))
    rank_path = storage.join(path, f"rank-{rank:05d}.pt")
    return shared, (_torch_load(rank_path) if storage.exists(rank_path) else None)


def prune(root: str, *, keep_last: int) -> None:
    """Keep the newest `keep_last` committed steps; drop older ones and torn directories."""
    steps = committed_steps(root)
    keep = set(steps[-keep_last:])
    newest = steps[-1] if steps else -1
    for name in storage.list_names(root):
        match = _STEP_DIR.match(name)
        if match and int(match.group(1)) not in keep and int(match.group(1)) < newest:
            storage.remove_tree(storage.join(root, name))


def capture_rng() -> dict:
    import numpy as np

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _torch_save(obj: dict, uri: str) -> None:
    with storage.open_uri(uri, "wb") as f:
        torch.save(obj, f)


def _torch_load(uri: str) -> dict:
    with storage.open_uri(uri, "rb") as f:
        # weights_only=False: optimizer and RNG states hold plain Python objects we wrote ourselves.
        return torch.load(f, map_location="cpu", weights_only=False)
