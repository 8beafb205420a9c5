"""Token loss of a causal LM on packed rows (no attention across documents)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainers.common.packing import IGNORE, Packed


def token_loss_sum(model, input_ids, position_ids, targets) -> torch.Tensor:
    """Summed cross-entropy of the targeted positions (packed rows: no attention mask needed)."""
    logits = model(input_ids=input_ids, position_ids=position_ids).logits
    return F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )


@torch.no_grad()
def eval_loss(
    model,
    packed: Packed,
    *,
    batch_size: int,
    max_batches: int,
    device: str,
    autocast: bool,
    rows: list[int] | None = None,
) -> tuple[float, int]:
    """(summed loss, target tokens) over `rows` (default: all), at most `max_batches` batches."""
    was_training = model.training
    model.eval()
    rows = list(range(len(packed.input_ids))) if rows is None else rows
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    total, count = 0.0, 0
    for batch in batches[: max_batches or None]:
        ids, pos, tgt = (
            t[batch].to(device) for t in (packed.input_ids, packed.position_ids, packed.targets)
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            total += float(token_loss_sum(model, ids, pos, tgt))
        count += int((tgt != IGNORE).sum())
    model.train(was_training)
    return total, count
