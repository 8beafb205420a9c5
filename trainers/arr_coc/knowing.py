"""The three "ways of knowing": one relevance score per cell of an image's token grid.

    info = propositional(texture)                 # [h, w] in [0, 1]: information (entropy)
    edges = perspectival(texture)                 # [h, w] in [0, 1]: salience (edge magnitude)
    scorer = ParticipatoryScorer(hidden=64, dim=base.hidden_size)
    queries = query_embedding(embeddings, question_ids=ids, question_mask=mask)   # [B, D]
    fit = scorer(texture, queries[i])             # [h, w] in [0, 1], trainable

Every score is a function of one image's texture (and its own question), so a sample's scores
never depend on the rest of its batch; the two fixed maps are min-max scaled within the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.arr_coc.texture import LAYOUT, MAGNITUDE, NUM_CHANNELS


def minmax(scores: torch.Tensor) -> torch.Tensor:
    """Scale one image's map to [0, 1] (a flat map becomes zeros)."""
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low + 1e-6)


def propositional(texture: torch.Tensor) -> torch.Tensor:
    """Information: the entropy of the softmax over a cell's content channels, negated. The
    channels are z-scored per image, so a cell at the image's average has a flat distribution
    (the most entropy: nothing to know there) and one that stands out in a few channels a peaked
    one. The layout channels (y, x, eccentricity) are left out: they are the same in every
    image, so they would only rank the corners."""
    content = [c for c in range(texture.shape[0]) if c not in LAYOUT]
    probs = F.softmax(texture[content], dim=0)
    entropy = -(probs * torch.log(probs + 1e-12)).sum(0)
    return minmax(-entropy)


def perspectival(texture: torch.Tensor) -> torch.Tensor:
    """Salience: where the edges are (the gradient-magnitude channel)."""
    return minmax(texture[MAGNITUDE])


class ParticipatoryScorer(nn.Module):
    """Fit between a cell and the question: 1x1 convs project the 13 channels to the LM's width
    (13 -> hidden -> dim), and the cosine with the question's embedding, mapped to [0, 1]."""

    def __init__(self, *, hidden: int, dim: int) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(NUM_CHANNELS, hidden, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(hidden, dim, kernel_size=1),
        )

    def forward(self, texture: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """[13, h, w] texture and a [dim] query embedding to [h, w] scores in [0, 1]."""
        features = F.normalize(self.project(texture.unsqueeze(0))[0], dim=0)
        cosine = torch.einsum("dhw,d->hw", features, F.normalize(query, dim=0))
        return (cosine + 1) / 2


def query_embedding(embeddings: nn.Embedding, *, question_ids, question_mask) -> torch.Tensor:
    """[B, dim]: the mean of each question's token embeddings in the LM's own table. Detached:
    the relevance losses train the scorers, never the LM's vocabulary."""
    with torch.no_grad():
        vectors = embeddings(question_ids).float()
        weights = question_mask.unsqueeze(-1).float()
        return (vectors * weights).sum(1) / weights.sum(1).clamp(min=1)
