"""Which packed rows each rank reads at each step: a seeded permutation per epoch.

The data position is the number of rows the whole job has consumed, `step * global_batch`, so a
resumed run reads exactly the rows the uninterrupted run would have read. Every rank holds the
row order; rank r takes its contiguous slice of each global batch, split into micro-batches.
"""

from __future__ import annotations

import torch

from trainers.common.config import ConfigError


def epoch_order(num_rows: int, *, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_rows, generator=generator)


def global_batch_rows(step: int, *, num_rows: int, global_batch: int, seed: int) -> list[int]:
    """Row indices of the global batch at `step` (wrapping into later epochs as needed)."""
    rows, start = [], step * global_batch
    for position in range(start, start + global_batch):
        epoch, offset = divmod(position, num_rows)
        if not rows or offset == 0 or position == start:
            order = epoch_order(num_rows, seed=seed, epoch=epoch)
        rows.append(int(order[offset]))
    return rows


def rank_micro_batches(
    rows: list[int], *, rank: int, world_size: int, micro_batch: int
) -> list[list[int]]:
    """This rank's share of a global batch, as micro-batches in order."""
    if len(rows) % (world_size * micro_batch):
        raise ConfigError(
            f"train.global_batch_size={len(rows)} must be a multiple of "
            f"train.micro_batch_size={micro_batch} x world size {world_size}"
        )
    share = len(rows) // world_size
    mine = rows[rank * share : (rank + 1) * share]
    return [mine[i : i + micro_batch] for i in range(0, share, micro_batch)]
