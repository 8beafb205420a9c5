"""The config sections every trainer shares: `optim.`, `train.`, `checkpoint.`, `wandb.`; the
one training loop reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainers.common.config import check, check_choice


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping

    def __post_init__(self):
        check(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        check(math.isfinite(self.lr), "optim.lr", self.lr, "must be a finite number")
        check(
            0 <= self.min_lr_ratio <= 1,
            "optim.min_lr_ratio",
            self.min_lr_ratio,
            "must be in [0, 1]",
        )
        check(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, "must be >= 0")
        check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0")
        check(
            0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
            "optim.beta1/beta2",
            (self.beta1, self.beta2),
            "must be in [0, 1)",
        )
        check(self.grad_clip >= 0, "optim.grad_clip", self.grad_clip, "must be >= 0")


@dataclass(kw_only=True)
class TrainConfig:
    max_steps: int = 100  # optimizer steps
    global_batch_size: int = 8  # packed sequences per optimizer step, over all ranks
    micro_batch_size: int = 8  # packed sequences per forward pass on one rank
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    log_every: int = 10
    eval_every: int = 50  # 0: only at the end
    eval_batches: int = 8  # 0: the whole eval split
    exact_match_examples: int = 64  # held-out prompts generated greedily at the end; 0 skips
    max_new_tokens: int = 16
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default
    # Steps with a non-finite loss or gradient that are skipped (their update dropped) before
    # the run stops; 0 stops at the first (trainers.common.divergence).
    skip_nonfinite_steps: int = 0

    def __post_init__(self):
        for name in ("max_steps", "global_batch_size", "micro_batch_size", "log_every"):
            check(getattr(self, name) > 0, f"train.{name}", getattr(self, name), "must be > 0")
        for name in (
            "eval_every",
            "eval_batches",
            "exact_match_examples",
            "threads",
            "skip_nonfinite_steps",
        ):
            check(getattr(self, name) >= 0, f"train.{name}", getattr(self, name), "must be >= 0")
        check(
            self.global_batch_size % self.micro_batch_size == 0,
            "train.global_batch_size",
            self.global_batch_size,
            f"must be a multiple of train.micro_batch_size={self.micro_batch_size}",
        )
        check_choice("train.precision", self.precision, ("auto", "fp32", "bf16"))


@dataclass(kw_only=True)
class CheckpointConfig:
    # "": this run's own, ./outputs/checkpoints/<trainer>-<key of its settings, data>
    # (trainers.common.resumable), so runs with other settings never resume each other.
    dir: str = ""
    every_steps: int = 50  # 0: only on SIGTERM
    keep_last: int = 2
    # false: start over, removing the checkpoints in `dir` (--no-resume)
    resume: bool = True

    def __post_init__(self):
        check(self.every_steps >= 0, "checkpoint.every_steps", self.every_steps, "must be >= 0")
        check(self.keep_last >= 1, "checkpoint.keep_last", self.keep_last, "must be >= 1")


@dataclass(kw_only=True)
class WandbConfig:
    project: str = "liftoff"
    enabled: bool = True
    secret: str = ""  # Secret Manager version holding the API key; never the key itself
