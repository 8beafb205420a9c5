"""The ARR-COC losses, per example, on tensors (no model, no I/O).

    bce, iou = mask_loss(score, cell_mask)         # stage 1: where to look, against the mask
    sums, counts = answer_ce(logits, labels)       # stages 2 and 3: the answer tokens only
    kl = distill_loss(score, target, temperature)  # every cell: the frozen model's saliency

A score map is an image's [h, w] combined relevance in [0, 1]; a cell mask the fraction of each
cell the referred object covers (NaN: no mask for this example).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainers.common.packing import IGNORE

EPS = 1e-6


def has_mask(cell_mask: torch.Tensor) -> bool:
    return not bool(torch.isnan(cell_mask).any())


def soft_iou(score: torch.Tensor, cell_mask: torch.Tensor) -> torch.Tensor:
    """Soft IoU of a score map and a coverage map: sum(s*m) / (sum(s) + sum(m) - sum(s*m))."""
    inter = (score * cell_mask).sum()
    return inter / (score.sum() + cell_mask.sum() - inter + EPS)


def mask_loss(score: torch.Tensor, cell_mask: torch.Tensor) -> torch.Tensor:
    """Stage 1: binary cross-entropy of each cell's score against the object's coverage, plus
    1 - soft IoU (the BCE alone is ruled by the many background cells)."""
    bce = F.binary_cross_entropy(score.clamp(EPS, 1 - EPS), cell_mask)
    return bce + 1 - soft_iou(score, cell_mask)


def answer_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """([B] summed next-token cross-entropy over labelled tokens, [B] how many there are):
    prompt, image and pad tokens carry IGNORE and count for nothing."""
    targets = labels[:, 1:]
    losses = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="none"
    )
    return losses.sum(1), (targets != IGNORE).sum(1)


def answer_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B] bool: every answer token is the argmax under teacher forcing, which is exactly when
    greedy decoding writes the answer (and its end token)."""
    targets = labels[:, 1:]
    hits = (logits[:, :-1].argmax(-1) == targets) | (targets == IGNORE)
    return hits.all(1) & (targets != IGNORE).any(1)


def distill_loss(score: torch.Tensor, target: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Cross-entropy of the target distribution over cells against softmax(score / T): every
    cell, kept or not, is pulled towards the frozen model's saliency."""
    log_probs = F.log_softmax(score.flatten() / temperature, dim=0)
    return -(target * log_probs).sum()
