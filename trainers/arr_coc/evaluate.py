"""ARR-COC evaluation: answer accuracy against the visual-token budget, for ARR-COC's own picks
and for the baselines at the same budgets (every token, random-K, a uniform grid), and
precision@K of the picks against the object masks.

    result = evaluate_model("outputs/model", "prepared/eval", max_examples=200, max_new_tokens=8)
    result.metrics["accuracy_at_budget"], result.metrics["accuracy_random_25"]

    metrics = budget_metrics(model, batches)      # the same numbers, in a trainer's process

Metric names (a budget as a percentage of each image's tokens): `accuracy_all_tokens`,
`accuracy_{arr_coc,random,grid}_{100,50,25,10}`, `precision_at_k_{arr_coc,random,grid}_P`,
`soft_iou`, `accuracy_adaptive` with `adaptive_tokens` (stage 3's own budget), and
`accuracy_at_budget` / `precision_at_k` at the model's budget. Hard records (`"hard": true`)
are scored apart, under `hard_`; the main numbers are the others'. An answer is correct when
greedy decoding writes exactly it (teacher-forced argmax over every answer token).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from trainers.arr_coc import allocation as alloc_lib
from trainers.arr_coc import data as data_lib
from trainers.arr_coc import selection
from trainers.arr_coc.inputs import collate
from trainers.arr_coc.losses import answer_correct, has_mask
from trainers.arr_coc.metrics import mask_metrics
from trainers.arr_coc.stages import stage_step
from trainers.common.steps import Evaluation

BUDGETS = (1.0, 0.5, 0.25, 0.1)
WAYS = ("arr_coc", "random", "grid")
SAMPLE_COLUMNS = ["question", "answer", "budget", "kept_cells", "correct"]


def pct(budget: float) -> int:
    return round(budget * 100)


def batches_of(model, base, located: list, *, batch_size: int, device="cpu") -> list:
    """The records encoded and collated in order, on `device`."""
    pad = base.tokenizer.pad_token_id
    examples = data_lib.encode_located(base, located)
    return [
        collate(examples[i : i + batch_size], pad_id=pad).to(device)
        for i in range(0, len(examples), batch_size)
    ]


@torch.no_grad()
def stage_sums(model, base, located, *, stage, train_base, batch_size, max_batches, device):
    """The stage's summed loss and target count over the first `max_batches` batches (0: all)
    of `located`, as the loop's eval wants them."""
    was_training, total, count = model.training, 0.0, 0
    model.eval()
    limit = len(located) if not max_batches else max_batches * batch_size
    for batch in batches_of(model, base, located[:limit], batch_size=batch_size, device=device):
        result = stage_step(model, batch, stage=stage, train_base=train_base)
        total, count = total + float(result.loss_sum), count + result.num_targets
    model.train(was_training)
    return {"loss": total, "targets": float(count)}


@torch.no_grad()
def budget_metrics(model, batches: list, *, seed: int = 0) -> dict[str, float]:
    """Accuracy and precision@K per way of picking and budget, and the adaptive budget's,
    averaged over the examples of `batches` (precision and soft IoU over those with a mask)."""
    was_training = model.training
    model.eval()
    means = _Means()
    generator = torch.Generator().manual_seed(seed)
    for batch in batches:
        _score_batch(model, batch, means, generator=generator)
    model.train(was_training)
    metrics = means.result()
    metrics["accuracy_all_tokens"] = metrics["accuracy_arr_coc_100"]
    at = f"arr_coc_{pct(model.cfg.budget)}"
    if f"accuracy_{at}" in metrics:  # a budget of the table (not a token count)
        metrics["accuracy_at_budget"] = metrics[f"accuracy_{at}"]
        metrics["precision_at_k"] = metrics.get(f"precision_at_k_{at}", 0.0)
    return metrics


class _Means:
    """Weighted running means by name."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.weights: dict[str, float] = defaultdict(float)

    def add(self, name: str, value: float, *, weight: float) -> None:
        self.sums[name] += value * weight
        self.weights[name] += weight

    def result(self) -> dict[str, float]:
        return {k: v / self.weights[k] for k, v in self.sums.items() if self.weights[k]}


def _score_batch(model, batch, means: _Means, *, generator) -> None:
    """Every way and budget on one batch: the vision tower and the scores run once."""
    n = batch.num_examples
    num_masked = sum(has_mask(m) for m in batch.cell_masks)
    relevance = model.relevance(batch)
    visual = selection.prepare(model.vlm, batch, image_token_id=model.image_token_id)
    shapes = [tuple(s.shape) for s in relevance.scores]
    for budget in BUDGETS:
        for way, alloc in _picks(model, relevance, shapes, budget, generator).items():
            key = f"{way}_{pct(budget)}"
            means.add(f"accuracy_{key}", _accuracy(model, batch, visual, alloc), weight=n)
            masked = mask_metrics(
                relevance.scores, indices=alloc.indices, cell_masks=batch.cell_masks
            )
            if masked:
                value = masked["relevance/precision_at_k"]
                means.add(f"precision_at_k_{key}", value, weight=num_masked)
                if key == "arr_coc_100":  # soft IoU is of the scores, whatever is kept
                    means.add("soft_iou", masked["relevance/soft_iou"], weight=num_masked)
    alloc = model.allocate(relevance, budget=None, adaptive=True)
    means.add("accuracy_adaptive", _accuracy(model, batch, visual, alloc), weight=n)
    means.add("adaptive_tokens", sum(alloc.num_kept) / n, weight=n)


def _accuracy(model, batch, visual, alloc) -> float:
    logits, labels = selection.forward_kept(
        model.vlm, batch, visual=visual, indices=alloc.indices, gates=alloc.gates
    )
    return float(answer_correct(logits, labels).float().mean())


def _picks(model, relevance, shapes, budget: float, generator) -> dict:
    return {
        "arr_coc": model.allocate(relevance, budget=budget, adaptive=False),
        "random": alloc_lib.random_allocation(
            [h * w for h, w in shapes], budget=budget, generator=generator
        ),
        "grid": alloc_lib.grid_allocation(shapes, budget=budget),
    }


def split_hard(located: list) -> tuple[list, list]:
    """(normal, hard) records: the main numbers are the normal ones' (all, when none are)."""
    hard = [item for item in located if item[1].get(data_lib.HARD_FIELD)]
    normal = [item for item in located if not item[1].get(data_lib.HARD_FIELD)]
    return (normal or hard), (hard if normal else [])


def evaluate_located(model, base, located: list, *, batch_size: int = 25) -> dict[str, float]:
    """budget_metrics of the normal records, and of the hard ones under `hard_`."""
    normal, hard = split_hard(located)
    device = next(model.parameters()).device
    metrics = budget_metrics(
        model, batches_of(model, base, normal, batch_size=batch_size, device=device)
    )
    if hard:
        hard_batches = batches_of(model, base, hard, batch_size=batch_size, device=device)
        metrics |= {f"hard_{k}": v for k, v in budget_metrics(model, hard_batches).items()}
    return metrics


@torch.no_grad()
def samples(model, base, located: list, *, limit: int) -> list[dict]:
    """Answers at the model's budget with the cells it kept, for the evaluation's table."""
    from trainers.arr_coc.overlay import kept_cells

    chosen = located[:limit]
    if not chosen:
        return []
    device = next(model.parameters()).device
    (batch,) = batches_of(model, base, chosen, batch_size=len(chosen), device=device)
    out = model(batch)
    rows = []
    for i, ((_, record), right) in enumerate(zip(chosen, correct(out), strict=True)):
        width = out.relevance.scores[i].shape[1]
        kept = kept_cells(out.allocation.indices[i].cpu(), grid_width=width)
        rows.append(
            {
                "question": record["question"],
                "answer": record["answer"],
                "budget": model.cfg.budget,
                "kept_cells": kept,
                "correct": right,
            }
        )
    return rows


def correct(out) -> list[bool]:
    """Per example: the answer is what greedy decoding writes."""
    return answer_correct(out.logits, out.labels).tolist()


def evaluate_model(
    model_uri: str, eval_dir: str, *, max_examples: int, max_new_tokens: int
) -> Evaluation:
    """A saved ARR-COC model on a prepared eval split (or any records source).
    `max_new_tokens` is unused: answers are scored under teacher forcing."""
    from trainers.arr_coc import saved
    from trainers.arr_coc.records import read_scene_records
    from trainers.common.prepared import records_uri

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, base, _ = saved.load(model_uri, device=device)
    located, _ = read_scene_records(records_uri(eval_dir))
    located = located[:max_examples] if max_examples else located
    metrics = evaluate_located(model, base, located)
    shown = samples(model, base, split_hard(located)[0], limit=min(16, len(located)))
    return Evaluation(metrics=metrics, samples=shown, columns=SAMPLE_COLUMNS)
