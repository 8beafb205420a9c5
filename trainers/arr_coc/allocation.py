"""The token allocator: which cells of each image the LM gets, and the gradient path to scores.

    alloc = allocate(scores, budget=0.25, temperature=0.05)            # fixed K per image
    alloc = allocate_adaptive(scores, thresholds=thresholds, temperature=0.05, min_budget=0.05,
                              max_budget=0.5)                          # stage 3
    alloc.indices[i]   # kept cells of image i, ascending (the LM's token order)
    alloc.gates[i]     # 1.0 in value, carrying d(loss)/d(score) of each kept cell

The forward pass is a hard top-K: the kept tokens are exactly the base model's tokens, and with
K = all the LM sees what the base model sees. Top-K's indices carry no gradient (the public
v0.1's fault), so two paths reach the scores:

1. A straight-through score gate. Each cell has a keep probability p = sigmoid((s - t) / T), a
   soft top-K: with a fixed K, t lies between the K-th and the (K+1)-th score (held fixed);
   with an adaptive budget, t is the balancer's threshold and is trained. Each kept token's
   embedding (and its DeepStack features) is multiplied by p - stop_grad(p) + 1: exactly 1 in
   the forward pass, and d(loss)/dp = <d(loss)/d(embedding), embedding> backwards, so the
   answer loss says for each kept cell whether more of it would have helped.
2. For the cells left out, which the LM never saw, a dense distillation target from the frozen
   model (`selection.saliency`): one all-token pass of the frozen VLM, gradient x input of the
   answer loss at every visual token, normalised over the image; the scores' softmax is pulled
   towards it (`losses.distill_loss`).

Why these and not a perturbed top-K (Berthet et al. 2020): its gradient estimate needs several
forward passes of the LM per example with different noise (the LM is the cost), is noisy at the
small batches a VLM trains with, and still only speaks of cells some noisy draw kept. The
distillation target costs one pass with no parameter gradients, reaches every cell, follows the
question, and its quality can be checked (on the debug set, against the object masks). The
expected budget sum(p) / N of stage 3 is differentiable through the same p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Allocation:
    indices: list[torch.Tensor]  # per image: kept cells (flat, row-major), ascending
    probs: list[torch.Tensor]  # per image: [num_cells] keep probabilities
    gates: list[torch.Tensor]  # per image: [num_kept] straight-through gates (value 1)

    @property
    def num_kept(self) -> list[int]:
        return [len(i) for i in self.indices]

    def detached(self) -> Allocation:
        """The negative control: the same selection with gates that carry no gradient."""
        return Allocation(
            self.indices, self.probs, [torch.ones_like(g).detach() for g in self.gates]
        )


def num_keep(num_cells: int, budget: float) -> int:
    """Tokens to keep of `num_cells`: a fraction when budget <= 1 (1.0 is all), else a count
    (at most all)."""
    if budget <= 1:
        return max(1, min(num_cells, round(budget * num_cells)))
    return min(num_cells, int(budget))


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k best cells of a flat score vector, in ascending cell order."""
    return torch.topk(scores.detach(), k).indices.sort().values


def gate(probs: torch.Tensor) -> torch.Tensor:
    """Straight-through: the value 1, the gradient of `probs`. (p - p) first, so the value is
    exactly 1.0: 1 + p - p can round to 1 +- 1 ulp.)"""
    return (probs - probs.detach()) + 1


def allocate(scores: list[torch.Tensor], *, budget: float, temperature: float) -> Allocation:
    """Top-K per image with K from `budget`; a fixed threshold between kept and dropped."""
    rows = []
    for score in scores:
        flat = score.flatten()
        k = num_keep(flat.numel(), budget)
        rows.append(_keep(flat, k=k, threshold=_between(flat.detach(), k), temperature=temperature))
    return _assemble(rows)


def _between(flat: torch.Tensor, k: int) -> torch.Tensor:
    """The midpoint of the k-th and (k+1)-th best scores (below the minimum when k is all)."""
    ranked = torch.sort(flat, descending=True).values
    if k >= flat.numel():
        return ranked[-1] - 1
    return (ranked[k - 1] + ranked[k]) / 2


def allocate_adaptive(
    scores: list[torch.Tensor],
    *,
    thresholds: torch.Tensor,
    temperature: float,
    min_budget: float,
    max_budget: float,
    anchor: float | None = None,
) -> Allocation:
    """Keep the cells that score above their image's threshold, within the budget's bounds;
    the probabilities (and so the expected budget) are differentiable in the threshold.

    With `anchor` (a fixed budget) a threshold in (0, 1) is an offset from the image's own cut
    at that budget: 0.5 keeps exactly the anchor's cells. An absolute threshold on scores
    that all lie below it keeps `min_budget` cells with keep probabilities near 0, whose
    gradients vanish, so the budget could never learn to grow; anchored, it starts where
    every boundary cell has p near 1/2."""
    rows = []
    for score, threshold in zip(scores, thresholds, strict=True):
        flat = score.flatten()
        n = flat.numel()
        if anchor is not None:
            threshold = _between(flat.detach(), num_keep(n, anchor)) + threshold - 0.5
        low, high = max(1, math.ceil(min_budget * n)), max(1, math.floor(max_budget * n))
        k = int((flat.detach() > threshold.detach()).sum().clamp(low, high))
        rows.append(_keep(flat, k=k, threshold=threshold, temperature=temperature))
    return _assemble(rows)


def _keep(flat: torch.Tensor, *, k: int, threshold, temperature: float) -> tuple:
    """(the k best cells, every cell's keep probability, the kept cells' gates)."""
    probs = torch.sigmoid((flat - threshold) / temperature)
    kept = top_k(flat, k)
    return kept, probs, gate(probs[kept])


def _assemble(rows: list[tuple]) -> Allocation:
    indices, probs, gates = (list(column) for column in zip(*rows, strict=True))
    return Allocation(indices, probs, gates)


def expected_budget(alloc: Allocation) -> torch.Tensor:
    """[B]: each image's expected fraction of tokens kept, sum(p) / N."""
    return torch.stack([p.mean() for p in alloc.probs])


def random_allocation(
    num_cells: list[int], *, budget: float, generator: torch.Generator
) -> Allocation:
    """The random-K baseline: K cells per image drawn uniformly, no gradient."""
    indices = [
        torch.randperm(n, generator=generator)[: num_keep(n, budget)].sort().values
        for n in num_cells
    ]
    return _fixed(indices, num_cells)


def grid_allocation(shapes: list[tuple[int, int]], *, budget: float) -> Allocation:
    """The uniform-grid baseline: K cells per image on an even lattice over its grid."""
    indices = [_lattice(h, w, num_keep(h * w, budget)) for h, w in shapes]
    return _fixed(indices, [h * w for h, w in shapes])


def _lattice(h: int, w: int, k: int) -> torch.Tensor:
    rows = min(h, math.ceil(math.sqrt(k * h / w)))
    cols = min(w, math.ceil(k / rows))
    ys = ((torch.arange(rows) + 0.5) * h / rows).long()
    xs = ((torch.arange(cols) + 0.5) * w / cols).long()
    cells = (ys.view(-1, 1) * w + xs.view(1, -1)).flatten()
    picked = cells[torch.linspace(0, len(cells) - 1, min(k, len(cells))).round().long()]
    if len(picked) < k:  # a lattice clipped by a thin grid: fill up in cell order
        rest = torch.tensor([c for c in range(h * w) if c not in set(picked.tolist())])
        picked = torch.cat([picked, rest[: k - len(picked)]])
    return picked.sort().values


def _fixed(indices: list[torch.Tensor], num_cells: list[int]) -> Allocation:
    probs = []
    for kept, n in zip(indices, num_cells, strict=True):
        p = torch.zeros(n)
        p[kept] = 1.0
        probs.append(p)
    return Allocation(indices, probs, [torch.ones(len(i)) for i in indices])
