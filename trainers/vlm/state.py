"""Checkpoints of a VLM run: the trained weights, optimizer, scheduler, progress and per-rank
RNG states, committed through trainers.common.training; and loading them back for an exact
resume. Frozen weights are not saved: they are rebuilt identically from the source and seed.
"""

from __future__ import annotations

from trainers.common import training


def trainable_state(model) -> dict:
    """The trained weights only: frozen ones are rebuilt identically from the source and seed,
    so a checkpoint of a 400M-parameter frozen tower does not carry it every time."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model, state: dict) -> None:
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(state) != expected:
        raise ValueError(
            "checkpoint does not match this run's trainable parameters (freeze or LoRA settings "
            f"changed?): {len(set(state) ^ expected)} names differ"
        )
    model.load_state_dict(state, strict=False)


def resume(run) -> None:
    """Load the newest committed checkpoint into `run`, if there is one."""
    found = training.load_checkpoint(run.cfg, run.dist)
    if found is None:
        return
    path, shared = found
    load_trainable_state(run.model, shared["model"])
    run.optimizer.load_state_dict(shared["optimizer"])
    run.scheduler.load_state_dict(shared["scheduler"])
    run.step, run.tokens_seen = shared["step"], shared["tokens_seen"]
    run.images_seen, run.skipped_images = shared["images_seen"], shared["skipped_images"]
    run.history = shared.get("history", {})
    print(f"resumed from {path} at step {run.step}", flush=True)


def save(run) -> str:
    """Commit a checkpoint of `run` at its current step."""
    shared = {
        "model": trainable_state(run.model),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "step": run.step,
        "tokens_seen": run.tokens_seen,
        "images_seen": run.images_seen,
        "skipped_images": run.skipped_images,
        "samples_seen": run.step * run.cfg.train.global_batch_size,
        "history": run.history,
    }
    return training.save_checkpoint(run.cfg, run.dist, step=run.step, shared=shared)
