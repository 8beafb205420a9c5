"""evaluate: the trainer's evaluation of a trained model on the prepared eval split (the LLM's
perplexity and exact match, the VLM's VQA exact match and losses), sample answers as a W&B
table, and the gate metric the pipeline branches on.

    result = evaluate(trainer="llm", model_uri="out/model", eval_dir="out/eval",
                      gate_metric="exact_match")   # {"metrics": {...}, "gate": 0.41, "samples"}
"""

from __future__ import annotations

from components.common import trainer_steps, use_run_group
from trainers.common.logs import log
from trainers.common.steps import gate_value
from trainers.common.tracking import start_tracker


def evaluate(
    *,
    trainer: str,
    model_uri: str,
    eval_dir: str,
    gate_metric: str,
    max_examples: int = 128,
    max_new_tokens: int = 32,
    wandb_project: str = "liftoff",
    wandb_secret: str = "",
    run_group: str = "",
    wandb_dir: str = "",
) -> dict:
    """{"metrics": {...}, "gate": float, "samples": [...]} for the model on the eval split."""
    steps = trainer_steps(trainer)
    steps.check_gate_metric(gate_metric)
    use_run_group(run_group, wandb_dir, step="evaluate")
    result = steps.evaluate(
        model_uri, eval_dir, max_examples=max_examples, max_new_tokens=max_new_tokens
    )
    gate = gate_value(result.metrics, gate_metric)
    tracker = start_tracker(
        enabled=bool(wandb_project),
        project=wandb_project,
        config={"model_uri": model_uri, "eval_data": eval_dir, "gate_metric": gate_metric},
        job_type="evaluate",
        directory=wandb_dir or None,
        wandb_secret=wandb_secret or None,
    )
    tracker.log({f"eval/{k}": v for k, v in result.metrics.items()}, step=0)
    tracker.log_table("eval/samples", columns=result.columns, rows=result.rows(), step=0)
    tracker.finish()
    log(f"evaluate: {result.metrics}; gate {gate_metric} = {gate:.4f}")
    return {"metrics": result.metrics, "gate": gate, "samples": result.samples}
