"""What a forward pass says about relevance, as W&B-ready floats (means over the batch).

    metrics = relevance_metrics(out, batch)   # knowing/*, balancer/*, allocation/*, relevance/*
    metrics |= answer_metrics(out)            # answer/accuracy when the LM ran

Against masks (examples without one are skipped): a cell is relevant when the referred object
covers any of it. precision@K is the fraction of kept cells that are relevant, recall@K the
fraction of relevant cells kept, soft IoU compares the scores with the object's coverage.
`compression_ratio` is visual tokens before over after; allocation/* count kept tokens per image.
"""

from __future__ import annotations

import torch

from trainers.arr_coc.balancing import WAYS
from trainers.arr_coc.inputs import Batch
from trainers.arr_coc.losses import answer_correct, has_mask, soft_iou


def relevance_metrics(out, batch: Batch) -> dict[str, float]:
    metrics = knowing_metrics(out.relevance.maps)
    weights = out.relevance.weights.detach().mean(0).tolist()
    metrics |= {f"balancer/{w}": v for w, v in zip(WAYS, weights, strict=True)}
    metrics["balancer/threshold"] = out.relevance.thresholds.detach().mean().item()
    metrics |= allocation_metrics(
        out.allocation.num_kept, [s.numel() for s in out.relevance.scores]
    )
    metrics |= mask_metrics(
        out.relevance.scores, indices=out.allocation.indices, cell_masks=batch.cell_masks
    )
    return metrics


def knowing_metrics(maps: list[torch.Tensor]) -> dict[str, float]:
    """Mean and standard deviation of each way of knowing over every cell of the batch."""
    metrics = {}
    for k, way in enumerate(WAYS):
        cells = torch.cat([m[k].flatten() for m in maps]).detach().float()
        metrics[f"knowing/{way}_mean"] = float(cells.mean())
        metrics[f"knowing/{way}_std"] = float(cells.std(unbiased=False))
    return metrics


def allocation_metrics(num_kept: list[int], num_cells: list[int]) -> dict[str, float]:
    kept = torch.tensor(num_kept, dtype=torch.float)
    return {
        "compression_ratio": sum(num_cells) / sum(num_kept),
        "allocation/mean_tokens": float(kept.mean()),
        "allocation/min_tokens": float(kept.min()),
        "allocation/max_tokens": float(kept.max()),
        "allocation/std_tokens": float(kept.std(unbiased=False)),
    }


def mask_metrics(scores, *, indices, cell_masks) -> dict[str, float]:
    """precision@K, recall@K and soft IoU, averaged over the examples that have a mask."""
    rows = []
    for score, kept, mask in zip(scores, indices, cell_masks, strict=True):
        if not has_mask(mask):
            continue
        relevant = mask.flatten() > 0
        hits = relevant[kept.to(relevant.device)].sum().float()
        rows.append(
            (
                float(hits / len(kept)),
                float(hits / relevant.sum().clamp(min=1)),
                float(soft_iou(score.detach().float(), mask)),
            )
        )
    if not rows:
        return {}
    means = torch.tensor(rows).mean(0).tolist()
    names = ("relevance/precision_at_k", "relevance/recall_at_k", "relevance/soft_iou")
    return dict(zip(names, means, strict=True))


def answer_metrics(out) -> dict[str, float]:
    if out.logits is None:
        return {}
    return {"answer/accuracy": float(answer_correct(out.logits, out.labels).float().mean())}
