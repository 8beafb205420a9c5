"""A run that diverges stops, in one line naming the step; non-finite weights never become a
checkpoint or a model.

    if divergence.apply_step(run, loss=loss, grad_norm=norm):   # False: skipped (bounded)
        optimizer.step()
    divergence.check_weights(model, step=run.step)              # before anything is written

A step whose loss or gradient norm (summed over every rank, so all ranks agree) is not finite
raises `Diverged`, unless `train.skip_nonfinite_steps` allows skipping it: its update is then
dropped and counted (`skipped_steps` in checkpoints and the metadata), and the run goes on.
"""

from __future__ import annotations

import math

import torch

from trainers.common.logs import log


class Diverged(RuntimeError):
    """Training produced non-finite numbers: one line for the trainer to print (exit 1)."""


def apply_step(run, *, loss: float, grad_norm: float) -> bool:
    """True when the step's update may be applied; False when it is skipped; Diverged when the
    skips allowed are spent. `run.step` is the number of steps done before this one."""
    problem = _non_finite(loss=loss, grad_norm=grad_norm)
    if problem is None:
        return True
    where = f"step {run.step + 1}/{run.cfg.train.max_steps}"
    allowed = run.cfg.train.skip_nonfinite_steps
    if run.skipped_steps >= allowed:
        raise Diverged(
            f"training diverged at {where}: {problem} (optim.lr={run.cfg.optim.lr:g}); no "
            "model was written. Lower optim.lr, or let train.skip_nonfinite_steps=N such "
            f"steps be skipped ({run.skipped_steps} skipped so far)"
        )
    run.skipped_steps += 1
    if run.dist.is_main:
        log(
            f"{where}: {problem}; its update is skipped ({run.skipped_steps} of "
            f"train.skip_nonfinite_steps={allowed})",
            severity="WARNING",
        )
    return False


def _non_finite(*, loss: float, grad_norm: float) -> str | None:
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    if not math.isfinite(grad_norm):
        return f"the gradient norm is {grad_norm}"
    return None


def check_weights(model: torch.nn.Module, *, step: int) -> None:
    """Diverged when a trained weight is not finite (what would be written is worthless)."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not trained:
        return
    # One flag per tensor and one read of them all: one device sync, not one per tensor.
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in trained])
    if bool(finite.all()):
        return
    first = trained[int((~finite).nonzero()[0, 0])][0]
    raise Diverged(
        f"training diverged: after step {step} the weights are not finite (first: {first}); "
        "nothing was written. Lower optim.lr"
    )
