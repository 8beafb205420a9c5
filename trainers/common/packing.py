"""Sequence packing: many examples per fixed-length row, with no attention across examples.

Pure functions on lists and tensors. An example is `(token_ids, trainable)`, where `trainable[i]`
says whether token i is a target (response tokens; prompt tokens are masked). A packed row holds
`input_ids`, `position_ids` that restart at 0 for every example (the attention path turns them
into a block-diagonal causal mask), and `targets`, already shifted: `targets[t]` is the token
that position t must predict, or IGNORE. The last token of an example never predicts the first
token of the next one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class Example:
    token_ids: list[int]
    trainable: list[bool]


@dataclass
class PackStats:
    examples: int = 0
    truncated: int = 0
    dropped: int = 0
    rows: int = 0
    tokens: int = 0  # non-padding tokens
    target_tokens: int = 0


@dataclass
class Packed:
    input_ids: torch.Tensor  # [rows, seq_len] int64
    position_ids: torch.Tensor  # [rows, seq_len] int64
    targets: torch.Tensor  # [rows, seq_len] int64, IGNORE where nothing is predicted
    row_tokens: torch.Tensor  # [rows] int64, non-padding tokens per row
    row_targets: torch.Tensor  # [rows] int64, positions with a target per row
    stats: PackStats


def fit_length(
    examples: list[Example], *, seq_len: int, overlong: str
) -> tuple[list[Example], PackStats]:
    """Truncate or drop examples longer than `seq_len`; drop those left with no target."""
    stats, kept = PackStats(examples=len(examples)), []
    for ex in examples:
        if len(ex.token_ids) > seq_len:
            if overlong == "drop":
                stats.dropped += 1
                continue
            stats.truncated += 1
            ex = Example(ex.token_ids[:seq_len], ex.trainable[:seq_len])
        if any(ex.trainable[1:]):
            kept.append(ex)
        else:
            stats.dropped += 1  # nothing left to learn from
    return kept, stats


def assign_rows(lengths: list[int], seq_len: int) -> list[list[int]]:
    """Best-fit decreasing bin packing: example indices per row, rows in creation order."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (space left, row index)
    for i in order:
        slot = bisect.bisect_left(free, (lengths[i], -1))
        if slot == len(free):
            rows.append([i])
            bisect.insort(free, (seq_len - lengths[i], len(rows) - 1))
            continue
        space, row = free.pop(slot)
        rows[row].append(i)
        bisect.insort(free, (space - lengths[i], row))
    return rows


def pack(
    examples: list[Example], *, seq_len: int, pad_id: int, overlong: str = "truncate"
) -> Packed:
    kept, stats = fit_length(examples, seq_len=seq_len, overlong=overlong)
    rows = assign_rows([len(ex.token_ids) for ex in kept], seq_len)
    shape = (len(rows), seq_len)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    targets = torch.full(shape, IGNORE, dtype=torch.long)
    row_tokens = torch.zeros(len(rows), dtype=torch.long)
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            _place(kept[i], start, input_ids[r], position_ids[r], targets[r])
            start += len(kept[i].token_ids)
        row_tokens[r] = start
        # Padding gets positions of its own run so it forms a separate block nobody attends to.
        position_ids[r, start:] = torch.arange(seq_len - start)
    stats.rows, stats.tokens = len(rows), sum(len(ex.token_ids) for ex in kept)
    row_targets = (targets != IGNORE).sum(dim=1)
    stats.target_tokens = int(row_targets.sum())
    return Packed(input_ids, position_ids, targets, row_tokens, row_targets, stats)


def _place(
    ex: Example, start: int, ids: torch.Tensor, pos: torch.Tensor, tgt: torch.Tensor
) -> None:
    n = len(ex.token_ids)
    tokens = torch.tensor(ex.token_ids)
    trainable = torch.tensor(ex.trainable)
    ids[start : start + n] = tokens
    pos[start : start + n] = torch.arange(n)
    # Position t predicts token t+1 of the same example only; the last token predicts nothing.
    tgt[start : start + n - 1] = torch.where(trainable[1:], tokens[1:], IGNORE)


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Which block each position belongs to (a new block wherever positions restart)."""
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[..., 1:] = position_ids[..., 1:] != position_ids[..., :-1] + 1
    return starts.long().cumsum(-1) - 1


def efficiency(stats: PackStats, seq_len: int) -> float:
    """Fraction of packed positions holding real tokens."""
    return stats.tokens / max(1, stats.rows * seq_len)
