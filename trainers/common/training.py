"""What surrounds the training loop (trainers.common.loop): the process group, the SIGTERM flag
and the W&B run it lives in, one config for all ranks, the optimizer and schedule from the
config, clipping, and stopping together.

    metadata = supervise(cfg, lambda cfg, dist, tracker, stop: body(...))

A trainer's config has `train`, `optim`, `checkpoint` and `wandb` sections
(trainers.common.sections).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trainers.common import distributed
from trainers.common.config import from_dict, to_dict
from trainers.common.optim import build_optimizer, build_scheduler
from trainers.common.preemption import Preempted, StopFlag
from trainers.common.tracking import start_tracker

Body = Callable[[object, distributed.Dist, object, StopFlag], dict]


def supervise(cfg, body: Body) -> dict:
    """Run `body(cfg, dist, tracker, stop)` inside the process group and a W&B run (rank 0), with
    the config W&B hands back (Launch overrides win); return its metadata."""
    dist = distributed.init()
    stop = StopFlag().install()
    tracker = start_tracker(
        enabled=dist.is_main and cfg.wandb.enabled,
        project=cfg.wandb.project,
        config=to_dict(cfg),
        job_type="train",
        wandb_secret=cfg.wandb.secret or None,
    )
    try:
        cfg = agree_on_config(from_dict(type(cfg), tracker.run_config()), dist)
        metadata = body(cfg, dist, tracker, stop)
    except Preempted:
        tracker.finish(exit_code=1)
        raise
    tracker.finish()
    distributed.shutdown(dist)
    return metadata


def agree_on_config(cfg, dist: distributed.Dist):
    """Rank 0's config (with any W&B Launch overrides) is everyone's."""
    if dist.world_size == 1:
        return cfg
    import torch.distributed as tdist

    box = [to_dict(cfg)]
    tdist.broadcast_object_list(box, src=0)
    return from_dict(type(cfg), box[0])


def build_optimization(model: torch.nn.Module, cfg):
    """(AdamW over the trainable parameters, warmup + cosine schedule) from cfg.optim/train."""
    optimizer = build_optimizer(
        model,
        lr=cfg.optim.lr,
        weight_decay=cfg.optim.weight_decay,
        betas=(cfg.optim.beta1, cfg.optim.beta2),
        eps=cfg.optim.eps,
    )
    scheduler = build_scheduler(
        optimizer,
        warmup_steps=cfg.optim.warmup_steps,
        max_steps=cfg.train.max_steps,
        min_ratio=cfg.optim.min_lr_ratio,
    )
    return optimizer, scheduler


def clip_trainable(model: torch.nn.Module, grad_clip: float) -> float:
    """Clip the trainable parameters' gradient norm (0: no clipping); return the norm."""
    params = [p for p in model.parameters() if p.requires_grad]
    return float(torch.nn.utils.clip_grad_norm_(params, grad_clip or float("inf")))


def stop_requested(stop: StopFlag, dist: distributed.Dist) -> bool:
    # Any rank's SIGTERM stops all of them at the same step.
    return distributed.all_reduce_sum(float(stop.requested), dist) > 0
