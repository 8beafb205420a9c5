"""Committed checkpoints: one directory per step, a COMMITTED marker written last; and what a
training run puts in them and takes back (the one place a checkpoint is assembled).

    save_run(run)                            # the loop's Run: model, optimizer, progress, RNG
    resumed = resume_run(run)                # False when there is no checkpoint yet
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
from trainers.common.config import ConfigError
from trainers.common.distributed import Dist, barrier
from trainers.common.logs import log

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


def save_run(run) -> str:
    """Commit a checkpoint of the loop's `run` at its current step: the task's model state,
    optimizer, scheduler, step, running totals, data position and history (rank 0), and
    every rank's RNG states."""
    shared = {
        "model": run.task.model_state(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "step": run.step,
        **run.totals,
        "samples_seen": run.step * run.cfg.train.global_batch_size,
        "history": run.history,
        **run.task.extra_state(),
    }
    cfg = run.cfg.checkpoint
    path = save(
        cfg.dir,
        run.step,
        shared,
        {"rng": capture_rng()},
        dist=run.dist,
        keep_last=cfg.keep_last,
    )
    if run.dist.is_main:
        log(f"checkpoint committed: {path}")
    return path


def resume_run(run) -> bool:
    """Load the newest committed checkpoint into `run` (this rank's RNG states too); False
    when there is none yet."""
    path = latest_committed(run.cfg.checkpoint.dir)
    if path is None:
        return False
    shared, mine = load(path, rank=run.dist.rank)
    if mine is not None:
        restore_rng(mine["rng"])
    run.task.load_model_state(shared["model"])
    run.optimizer.load_state_dict(shared["optimizer"])
    run.scheduler.load_state_dict(shared["scheduler"])
    run.step = shared["step"]
    run.totals = {name: shared[name] for name in run.totals}
    run.history = shared.get("history", {})
    run.task.load_extra_state(shared)
    log(f"resumed from {path} at step {run.step}")
    return True


def trainable_state(model: torch.nn.Module) -> dict:
    """The trained weights only: frozen ones are rebuilt identically from the source and seed,
    so a checkpoint of a 400M-parameter frozen tower does not carry it every time."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict) -> None:
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(state) != expected:
        raise ConfigError(
            "checkpoint.dir holds a checkpoint of other trainable parameters (freeze or LoRA "
            f"settings changed?): {len(set(state) ^ expected)} names differ"
        )
    model.load_state_dict(state, strict=False)


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
