"""The VLM trainer's steps in the pipeline (see trainers.common.steps): prepare stores each
split's images beside its records, train runs `python -m trainers.vlm` (DDP), evaluate scores
VQA exact match and the answer and caption losses.

    from trainers.vlm.steps import STEPS
    stats = STEPS.prepare(STEPS.config(["--preset", "debug"]), train_dir="t", eval_dir="e")
"""

from __future__ import annotations

from trainers.common.steps import Evaluation, TrainerSteps
from trainers.vlm.__main__ import parser
from trainers.vlm.presets import get_preset


def prepare(cfg, **dirs) -> dict:
    from trainers.vlm.prepared import prepare as prepare_splits

    return prepare_splits(cfg, **dirs)


def numbers(manifest: dict) -> dict:
    return {k: manifest[k] for k in ("vqa_records", "caption_records", "images_bytes")}


def describe(manifest: dict) -> str:
    return (
        f"{manifest['num_records']} records ({manifest['vqa_records']} VQA, "
        f"{manifest['caption_records']} captions), "
        f"{manifest['images_bytes'] / 1e6:.1f} MB of images"
    )


def evaluate(model_uri: str, eval_dir: str, **limits) -> Evaluation:
    from trainers.vlm.evaluate import evaluate_model

    return evaluate_model(model_uri, eval_dir, **limits)


STEPS = TrainerSteps(
    name="vlm",
    module="trainers.vlm",
    parser=parser,
    get_preset=get_preset,
    prepare=prepare,
    numbers=numbers,
    describe=describe,
    evaluate=evaluate,
    gate_metrics=("vqa_exact_match", "neg_eval_loss", "neg_caption_loss", "neg_vqa_loss"),
)
