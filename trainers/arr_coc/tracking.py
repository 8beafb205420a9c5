"""What an ARR-COC stage logs to W&B when it ends (rank 0), besides the loop's own metrics:

    log_stage_end(run, model, base, eval_located, limit=100)

- `eval/*`: accuracy and precision@K against budget for ARR-COC and the baselines
  (trainers.arr_coc.evaluate's names), `eval/accuracy_at_budget` first among them;
- `eval/accuracy_vs_budget`: a line plot, one line per way of picking, over the budget in %;
- `eval/kept_cells`: a table of eval images with the cells kept at the model's budget drawn
  over them, the question, the answer and whether it was right.
"""

from __future__ import annotations

import torch

from trainers.arr_coc import evaluate
from trainers.arr_coc.overlay import draw_kept
from trainers.arr_coc.records import load_images
from trainers.common.logs import log
from trainers.common.records import base_dir

NUM_PICTURES = 8
PICTURE_COLUMNS = ["image", "question", "answer", "kept_tokens", "correct"]


def log_stage_end(run, model, base, located: list, *, limit: int) -> dict[str, float]:
    """Score `located[:limit]` at every budget, log it all; return the metrics."""
    metrics = evaluate.evaluate_located(model, base, located[:limit])
    run.log({f"eval/{k}": v for k, v in metrics.items()})
    budgets = [evaluate.pct(b) for b in evaluate.BUDGETS]
    lines = {way: [metrics[f"accuracy_{way}_{p}"] for p in budgets] for way in evaluate.WAYS}
    run.tracker.log_lines(
        "eval/accuracy_vs_budget",
        xs=budgets,
        lines=lines,
        title="answer accuracy against the visual-token budget (%)",
        x_name="budget %",
        step=run.step,
    )
    run.tracker.log_table(
        "eval/kept_cells",
        columns=PICTURE_COLUMNS,
        rows=pictures(model, base, located),
        step=run.step,
    )
    log(f"step {run.step} eval: " + table_line(metrics))
    return metrics


def table_line(metrics: dict[str, float]) -> str:
    """Accuracy per budget and way, one line: "100%: arr_coc 0.66 random 0.66 grid 0.66; ..."."""
    parts = []
    for budget in evaluate.BUDGETS:
        p = evaluate.pct(budget)
        ways = " ".join(f"{w} {metrics[f'accuracy_{w}_{p}']:.3f}" for w in evaluate.WAYS)
        parts.append(f"{p}%: {ways}")
    return "; ".join(parts)


@torch.no_grad()
def pictures(model, base, located: list) -> list[list]:
    """Rows of the kept-cells table for the first eval records."""
    chosen = located[:NUM_PICTURES]
    if not chosen:
        return []
    device = next(model.parameters()).device
    (batch,) = evaluate.batches_of(model, base, chosen, batch_size=len(chosen), device=device)
    was_training = model.training
    model.eval()
    out = model(batch)
    model.train(was_training)
    correct = evaluate.correct(out)
    rows = []
    for i, (where, record) in enumerate(chosen):
        image, _ = load_images(record, where=where, base_dir=base_dir(where))
        grid = tuple(out.relevance.scores[i].shape)
        picture = draw_kept(image, out.allocation.indices[i].cpu(), grid=grid)
        kept = len(out.allocation.indices[i])
        rows.append([picture, record["question"], record["answer"], kept, bool(correct[i])])
    return rows
