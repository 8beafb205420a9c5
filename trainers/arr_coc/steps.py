"""The ARR-COC trainer's steps in the pipeline (see trainers.common.steps): prepare writes the
split's records with their images and masks beside them, train runs `python -m trainers.arr_coc`
once per stage (`--stage N --init-model PREVIOUS`), evaluate scores accuracy against the visual
token budget for ARR-COC and the baselines.

    from trainers.arr_coc.steps import STEPS
    cfg = STEPS.config(["--preset", "debug", "--stage", "2", "--init-model", "out/stage1"])
"""

from __future__ import annotations

from trainers.arr_coc.__main__ import parser
from trainers.arr_coc.presets import get_preset
from trainers.common.steps import Evaluation, TrainerSteps


def prepare(cfg, **dirs) -> dict:
    from trainers.arr_coc.prepared import prepare as prepare_splits

    return prepare_splits(cfg, **dirs)


def numbers(manifest: dict) -> dict:
    return {k: manifest[k] for k in ("masked_records", "hard_records", "images_bytes")}


def describe(manifest: dict) -> str:
    return (
        f"{manifest['num_records']} records ({manifest['masked_records']} with a mask, "
        f"{manifest['hard_records']} hard), {manifest['images_bytes'] / 1e6:.1f} MB of images"
    )


def evaluate(model_uri: str, eval_dir: str, **limits) -> Evaluation:
    from trainers.arr_coc.evaluate import evaluate_model

    return evaluate_model(model_uri, eval_dir, **limits)


STEPS = TrainerSteps(
    name="arr_coc",
    module="trainers.arr_coc",
    parser=parser,
    get_preset=get_preset,
    prepare=prepare,
    numbers=numbers,
    describe=describe,
    evaluate=evaluate,
    gate_metrics=(
        "accuracy_at_budget",
        "accuracy_adaptive",
        "accuracy_all_tokens",
        "precision_at_k",
    ),
)
