"""evaluate for the VLM trainer: VQA exact match of greedy answers and caption loss on the
prepared eval split, sample answers with their images as a W&B table, and the gate metric the
pipeline branches on.

    result = evaluate(model_uri="out/model", eval_dir="out/eval", gate_metric="vqa_exact_match")
"""

from __future__ import annotations

import io
import math

from PIL import Image

from components.common import use_run_group
from components.evaluate.task import log_results
from trainers.common import storage
from trainers.vlm.evaluate import evaluate_model

# Higher is better for every gate metric, so the gate is always `value >= threshold`;
# "neg_X" gates on -X.
GATE_METRICS = ("vqa_exact_match", "neg_eval_loss", "neg_caption_loss", "neg_vqa_loss")
SAMPLE_COLUMNS = ["image", "question", "reference", "output", "correct"]


def evaluate(
    *,
    model_uri: str,
    eval_dir: str,
    gate_metric: str = "vqa_exact_match",
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
    result = evaluate_model(
        model_uri,
        storage.join(eval_dir, "records.jsonl"),
        max_examples=max_examples,
        max_new_tokens=max_new_tokens,
    )
    # A loss over no examples (an eval split without captions) is NaN: not a metric to record.
    metrics = {k: float(v) for k, v in result["metrics"].items() if not math.isnan(float(v))}
    gate = gate_value(metrics, gate_metric)
    samples = result["samples"]
    log_results(
        metrics,
        columns=SAMPLE_COLUMNS,
        rows=[[_image(s["image"]), *(s[c] for c in SAMPLE_COLUMNS[1:])] for s in samples],
        config={"model_uri": model_uri, "eval_data": eval_dir, "gate_metric": gate_metric},
        wandb_project=wandb_project,
        wandb_secret=wandb_secret,
        wandb_dir=wandb_dir,
    )
    print(f"evaluate: {metrics}; gate {gate_metric} = {gate:.4f}", flush=True)
    return {"metrics": metrics, "gate": gate, "samples": samples}


def gate_value(metrics: dict[str, float], gate_metric: str) -> float:
    name = gate_metric.removeprefix("neg_")
    if name not in metrics:
        raise ValueError(f"gate_metric: {gate_metric!r} needs {name}, which this eval split lacks")
    return metrics[name] if name == gate_metric else -metrics[name]


def _image(data: bytes) -> Image.Image:
    """Decoded now, so the tracker logs the picture (wandb.Image), not its bytes."""
    return Image.open(io.BytesIO(data)).convert("RGB")
