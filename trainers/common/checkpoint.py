"""Committed checkpoints: one directory per step, a COMMITTED marker written last; and what a
training run puts in them and takes back (the one place a checkpoint is assembled).

    save_run(run)                            # the loop's Run: model, optimizer, progress, RNG
    resumed = resume_run(run)                # False when there is nothing of this run to resume
    save(root, step, shared_state, rank_state, dist=d, keep_last=2, fingerprint={...})
    latest = latest_committed(root)          # None, or the newest directory with a marker
    shared_state, rank_state = load(latest, rank=d.rank)   # verified, or Damaged

A step directory holds `state.safetensors` (model, optimizer, scheduler, progress: rank 0) and
`rank-NNNNN.safetensors` (each rank's RNG states), tensors in safetensors and the rest as JSON
(trainers.common.statefile): loading one never unpickles anything. Object stores (and GCS FUSE)
have no atomic rename, so a directory counts only once its marker exists. The marker records
each file's size and CRC32C and the run's fingerprint (trainers.common.resumable); on local
disks the files and the directory are fsynced before it is written. A directory without one (a
save cut off by SIGKILL) is never loaded and is cleared by the next save. Resume takes the
newest committed checkpoint whose files check out; a damaged one is removed with a warning
naming what is wrong, and the one before it is tried. One of another run is refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import tempfile
import time

import torch

from trainers.common import divergence, resumable, statefile, storage
from trainers.common.config import ConfigError
from trainers.common.distributed import Dist, all_gather_objects, all_reduce_sum, barrier
from trainers.common.logs import log

MARKER = "COMMITTED"
FORMAT = 2  # 1: pickled state.pt/rank-N.pt (not loaded: unpickling can run code)
STATE = "state.safetensors"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class Damaged(Exception):
    """A committed checkpoint whose files do not match its marker; one line saying how."""


def step_dir(root: str, step: int) -> str:
    return storage.join(root, f"step-{step:08d}")


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.safetensors"


def save(
    root: str,
    step: int,
    shared_state: dict,
    rank_state: dict,
    *,
    dist: Dist,
    keep_last: int,
    fingerprint: dict | None = None,
) -> str:
    path = step_dir(root, step)
    if dist.is_main:
        storage.remove_tree(path)  # a torn save of the same step from an earlier attempt
        storage.makedirs(path)
    barrier(dist)
    files = {
        rank_file(dist.rank): statefile.write(rank_state, storage.join(path, rank_file(dist.rank)))
    }
    if dist.is_main:
        files[STATE] = statefile.write(shared_state, storage.join(path, STATE))
    every_rank = all_gather_objects(files, dist)  # every rank's files exist once this returns
    if dist.is_main:
        marker = {
            "format": FORMAT,
            "step": step,
            "world_size": dist.world_size,
            "time": time.time(),
            "files": {n: dataclasses.asdict(w) for f in every_rank for n, w in sorted(f.items())},
            "fingerprint": fingerprint or {},
        }
        _commit(root, path, marker)
        prune(root, keep_last=keep_last)
    barrier(dist)
    return path


def _commit(root: str, path: str, marker: dict) -> None:
    """The marker, once the files' names are on disk; then the marker's own name."""
    storage.sync_dir(path)
    storage.sync_dir(root)
    storage.write_text(storage.join(path, MARKER), json.dumps(marker, indent=1), durable=True)
    storage.sync_dir(path)


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


def read_marker(path: str) -> dict:
    """The commit marker of `path`: Damaged when it is not one, ConfigError when it is one of
    the old pickled format, which is never loaded."""
    try:
        marker = json.loads(storage.read_text(storage.join(path, MARKER)))
    except (ValueError, UnicodeDecodeError, FileNotFoundError) as err:
        raise Damaged(f"{MARKER}: not a commit marker ({err})") from None
    if not isinstance(marker, dict):
        raise Damaged(f"{MARKER}: not a commit marker")
    if marker.get("format") != FORMAT:
        raise ConfigError(
            f"checkpoint {path} was written by an earlier liftoff, as pickles, which are not "
            "loaded (unpickling a file can run code): start over with --no-resume, which "
            "removes it, or give another --checkpoint-dir"
        )
    if not {"step", "world_size", "files"} <= set(marker) or STATE not in marker["files"]:
        raise Damaged(f"{MARKER}: incomplete ({sorted(marker)})")
    return marker


def load(path: str, *, rank: int, marker: dict | None = None) -> tuple[dict, dict]:
    """The shared state and this rank's state, each file checked against the marker's size
    and CRC32C: Damaged when one is missing, cut short or changed."""
    marker = marker or read_marker(path)
    check_world_size(path, marker, world_size=rank + 1)
    _check_sizes(path, marker)
    with tempfile.TemporaryDirectory(prefix="liftoff-ckpt-") as staging:
        shared = _read_verified(path, STATE, marker, staging)
        mine = _read_verified(path, rank_file(rank), marker, staging)
    return shared, mine


def check_world_size(path: str, marker: dict, *, world_size: int) -> None:
    """Every process must find its RNG states: more processes than saved them is refused."""
    if world_size > marker["world_size"]:
        raise ConfigError(
            f"checkpoint {path} holds the RNG states of {marker['world_size']} processes, "
            f"not {world_size}: resume with at most {marker['world_size']}, or start over "
            "with --no-resume"
        )


def _check_sizes(path: str, marker: dict) -> None:
    """Every file the marker lists is there with its size (one listing, on every rank, so the
    ranks agree and the warning names the file)."""
    found = storage.sizes(path)
    for name, expected in sorted(marker["files"].items()):
        if name not in found:
            raise Damaged(f"{name} is missing")
        if found[name] != expected["size"]:
            raise Damaged(f"{name} has {found[name]} bytes, not {expected['size']}")


def _read_verified(path: str, name: str, marker: dict, staging: str) -> dict:
    expected = marker["files"].get(name)
    if expected is None:
        raise Damaged(f"the marker lists no {name}")
    uri = storage.join(path, name)
    local = storage.local_path(uri)
    if local is None:
        local = f"{staging}/{name}"
        storage.get_file(uri, local)
    got = storage.checksum(local)
    if dataclasses.asdict(got) != expected:
        raise Damaged(f"{name} has {got.size} bytes and CRC32C {got.crc32c}, not {expected}")
    try:
        return statefile.read(local)
    except Exception as err:  # a file that matches its marker but not its format
        raise Damaged(f"{name}: unreadable ({err})") from None


def prune(root: str, *, keep_last: int) -> None:
    """Keep the newest `keep_last` committed steps; drop older ones and torn directories."""
    steps = committed_steps(root)
    keep = set(steps[-keep_last:])
    newest = steps[-1] if steps else -1
    for name in storage.list_names(root):
        match = _STEP_DIR.match(name)
        if match and int(match.group(1)) not in keep and int(match.group(1)) < newest:
            storage.remove_tree(storage.join(root, name))


def run_root(run) -> str:
    """The run's checkpoint directory: checkpoint.dir, else one of its own (resumable)."""
    cfg = run.cfg
    if not cfg.checkpoint.dir:
        root = resumable.default_root(cfg, trainer=type(run.task), world_size=run.dist.world_size)
        section = dataclasses.replace(cfg.checkpoint, dir=root)
        run.cfg = dataclasses.replace(cfg, checkpoint=section)
        if run.dist.is_main:
            log(f"checkpoints: {root} (this run's own; --checkpoint-dir sets another)")
    return run.cfg.checkpoint.dir


def _fingerprint(run) -> dict:
    if not run.fingerprint:  # hashing the records once per run, not once per checkpoint
        run.fingerprint = resumable.of_run(run.cfg, run.task)
    return run.fingerprint


def save_run(run) -> str:
    """Commit a checkpoint of the loop's `run` at its current step: the task's model state,
    optimizer, scheduler, step, running totals, data position and history (rank 0), and
    every rank's RNG states. Non-finite weights are never saved (divergence.Diverged)."""
    divergence.check_weights(run.task.model, step=run.step)
    shared = {
        "model": run.task.model_state(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "step": run.step,
        **run.totals,
        "skipped_steps": run.skipped_steps,
        "samples_seen": run.step * run.cfg.train.global_batch_size,
        "history": run.history,
        **run.task.extra_state(),
    }
    path = save(
        run_root(run),
        run.step,
        shared,
        {"rng": capture_rng()},
        dist=run.dist,
        keep_last=run.cfg.checkpoint.keep_last,
        fingerprint=_fingerprint(run),
    )
    if run.dist.is_main:
        log(f"checkpoint committed: {path}")
    return path


def resume_run(run) -> bool:
    """Load the newest intact committed checkpoint of this run into `run` (this rank's RNG
    states too); False when there is none. Damaged ones are removed on the way, one of another
    run is refused (ConfigError); with checkpoint.resume=false all are removed first."""
    root = run_root(run)
    if not run.cfg.checkpoint.resume:
        _start_over(root, run.dist)
        return False
    fingerprint = _fingerprint(run)
    for step in reversed(committed_steps(root)):
        path = step_dir(root, step)
        loaded, problem = _try_load(path, run.dist, fingerprint=fingerprint, root=root)
        if not _agreed_intact(problem, run.dist):
            _discard(path, problem, run.dist)
            continue
        _restore(run, *loaded)
        log(f"resumed from {path} at step {run.step}")
        return True
    return False


def _try_load(path: str, dist: Dist, *, fingerprint: dict, root: str):
    """((shared, mine), None), or (None, what is damaged); ConfigError for another run's."""
    try:
        marker = read_marker(path)
        resumable.check(marker.get("fingerprint", {}), fingerprint, root=root, step=marker["step"])
        check_world_size(path, marker, world_size=dist.world_size)  # on every rank alike
        return load(path, rank=dist.rank, marker=marker), None
    except Damaged as err:
        return None, str(err)


def _agreed_intact(problem: str | None, dist: Dist) -> bool:
    """True when no rank found its files damaged: all ranks resume from the same step."""
    return all_reduce_sum(float(problem is not None), dist) == 0


def _discard(path: str, problem: str | None, dist: Dist) -> None:
    if problem is not None:
        log(f"checkpoint {path} is damaged: {problem}; removing it", severity="WARNING")
    if dist.is_main:
        storage.remove_tree(path)
    barrier(dist)


def _start_over(root: str, dist: Dist) -> None:
    """checkpoint.resume=false: this directory's checkpoints go, so none is mixed with ours."""
    if dist.is_main:
        names = [n for n in storage.list_names(root) if _STEP_DIR.match(n)]
        for name in names:
            storage.remove_tree(storage.join(root, name))
        if names:
            log(
                f"--no-resume: removed {len(names)} earlier checkpoints from {root}",
                severity="WARNING",
            )
    barrier(dist)


def _restore(run, shared: dict, mine: dict) -> None:
    restore_rng(mine["rng"])
    run.task.load_model_state(shared["model"])
    run.optimizer.load_state_dict(shared["optimizer"])
    run.scheduler.load_state_dict(shared["scheduler"])
    run.step = shared["step"]
    run.totals = {name: shared[name] for name in run.totals}
    run.skipped_steps = shared.get("skipped_steps", 0)
    run.history = shared.get("history", {})
    run.task.load_extra_state(shared)


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
    """This process's RNG states (python, numpy, torch, CUDA), as a state file holds them."""
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict) -> None:
    """Every RNG state of `state`; a CUDA state on a machine without CUDA (or none where there
    is CUDA) cannot be restored, so the resume is refused rather than run on other streams."""
    import numpy as np

    if ("cuda" in state) != torch.cuda.is_available():
        there, here = ("with", "without") if "cuda" in state else ("without", "with")
        raise ConfigError(
            f"the checkpoint was written {there} CUDA and this run is {here}: its random "
            "streams cannot be restored; resume it on the same kind of machine, or --no-resume"
        )
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])
