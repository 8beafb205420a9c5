"""evaluate: perplexity on the prepared eval split, exact match of greedy answers against the
references, sample generations as a W&B table, and the gate metric the pipeline branches on.

    result = evaluate(model_uri="out/model", eval_dir="out/eval", gate_metric="exact_match")

The VLM trainer's twin is vlm.py; both log to W&B through `log_results`.
"""

from __future__ import annotations

import tempfile

from components.common import use_run_group
from trainers.common.tracking import start_tracker
from trainers.llm import evaluate as llm_eval
from trainers.llm import prepared
from trainers.lm import loss as lm_loss
from trainers.lm.model import load_trained

# Higher is better for every gate metric, so the gate is always `value >= threshold`.
GATE_METRICS = ("exact_match", "neg_eval_loss")
SAMPLE_COLUMNS = ["prompt", "reference", "output", "correct"]


def evaluate(
    *,
    model_uri: str,
    eval_dir: str,
    gate_metric: str = "exact_match",
    max_examples: int = 128,
    max_new_tokens: int = 32,
    wandb_project: str = "liftoff",
    wandb_secret: str = "",
    run_group: str = "",
    wandb_dir: str = "",
) -> dict:
    """{"metrics": {...}, "gate": float, "samples": [...]} for the model on the eval split."""
    if gate_metric not in GATE_METRICS:
        raise ValueError(f"gate_metric: {gate_metric!r} must be one of {GATE_METRICS}")
    use_run_group(run_group, wandb_dir)
    model, tokenizer = load_trained(model_uri)
    device = str(model.device)
    with tempfile.TemporaryDirectory(prefix="liftoff-eval-") as local:
        split = prepared.load(eval_dir, local_dir=local)
    total, count = lm_loss.eval_loss(
        model, split.packed, batch_size=8, max_batches=0, device=device, autocast=False
    )
    loss = total / max(1, count)
    score, samples = llm_eval.exact_match(
        model, tokenizer, split.records[:max_examples], max_new_tokens=max_new_tokens, device=device
    )
    metrics = {
        "eval_loss": loss,
        "perplexity": lm_loss.perplexity(loss),
        "exact_match": score,
        "eval_examples": float(min(max_examples, len(split.records))),
    }
    gate = score if gate_metric == "exact_match" else -loss
    log_results(
        metrics,
        columns=SAMPLE_COLUMNS,
        rows=[[s[c] for c in SAMPLE_COLUMNS] for s in samples],
        config={"model_uri": model_uri, "eval_data": eval_dir, "gate_metric": gate_metric},
        wandb_project=wandb_project,
        wandb_secret=wandb_secret,
        wandb_dir=wandb_dir,
    )
    print(f"evaluate: {metrics}; gate {gate_metric} = {gate:.4f}", flush=True)
    return {"metrics": metrics, "gate": gate, "samples": samples}


def log_results(
    metrics: dict,
    *,
    columns: list[str],
    rows: list[list],
    config: dict,
    wandb_project: str,
    wandb_secret: str,
    wandb_dir: str,
) -> None:
    """The metrics as `eval/*` and the samples as the `eval/samples` table, in one W&B run."""
    tracker = start_tracker(
        enabled=bool(wandb_project),
        project=wandb_project,
        config=config,
        job_type="evaluate",
        directory=wandb_dir or None,
        wandb_secret=wandb_secret or None,
    )
    tracker.log({f"eval/{k}": v for k, v in metrics.items()}, step=0)
    tracker.log_table("eval/samples", columns=columns, rows=rows, step=0)
    tracker.finish()
