"""AdamW (fused on CUDA), weight decay on matrices only, and a warmup + cosine schedule."""

from __future__ import annotations

import math

import torch


def build_optimizer(
    model: torch.nn.Module, *, lr: float, weight_decay: float, betas: tuple, eps: float
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases, norms and other vectors get no decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = bool(params) and params[0].is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def lr_factor(step: int, *, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `max_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer, *, warmup_steps: int, max_steps: int, min_ratio: float):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, warmup_steps=warmup_steps, max_steps=max_steps, min_ratio=min_ratio
        ),
    )
