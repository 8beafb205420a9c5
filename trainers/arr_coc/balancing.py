"""The adaptive tension balancer: how much each way of knowing counts, per image and question.

    balancer = TensionBalancer(dim=base.hidden_size, hidden=128)
    weights, threshold = balancer(maps, queries)     # [B, 3] softmax weights, [B] in (0, 1)
    scores = combine(maps, weights)                  # per image [h, w] in [0, 1]

An MLP reads the mean, max and standard deviation of each of an image's three score maps and its
question's embedding. One head gives a softmax over the three maps; a second gives a threshold
on the combined score, which decides how many tokens an image gets when the budget adapts
(stage 3). Both heads start at zero: equal weights and a threshold of 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WAYS = ("propositional", "perspectival", "participatory")
NUM_SUMMARIES = 3 * len(WAYS)  # mean, max, std of each map


class TensionBalancer(nn.Module):
    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(NUM_SUMMARIES + dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.weights = nn.Linear(hidden, len(WAYS))
        self.threshold = nn.Linear(hidden, 1)
        for head in (self.weights, self.threshold):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(
        self, maps: list[torch.Tensor], queries: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image [3, h, w] maps and [B, dim] queries to ([B, 3] weights, [B] thresholds)."""
        summaries = torch.stack([summarise(m) for m in maps])
        # Parameter-free layer norm: the embedding's scale differs from model to model.
        query = F.layer_norm(queries.float(), queries.shape[-1:])
        hidden = self.trunk(torch.cat([summaries, query], dim=-1))
        weights = F.softmax(self.weights(hidden), dim=-1)
        return weights, torch.sigmoid(self.threshold(hidden)).squeeze(-1)


def summarise(maps: torch.Tensor) -> torch.Tensor:
    """[3, h, w] maps to their 9 summaries: mean, max and standard deviation of each."""
    flat = maps.flatten(1)
    return torch.cat([flat.mean(1), flat.amax(1), flat.std(1, unbiased=False)])


def combine(maps: list[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
    """Each image's weighted sum of its three maps: [h, w] in [0, 1]."""
    return [torch.einsum("k,khw->hw", w, m) for m, w in zip(maps, weights, strict=True)]
