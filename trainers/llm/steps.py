"""The LLM trainer's steps in the pipeline (see trainers.common.steps): prepare packs the
records into shards, train runs `python -m trainers.llm`, evaluate scores perplexity and exact
match.

    from trainers.llm.steps import STEPS
    stats = STEPS.prepare(STEPS.config(["--preset", "debug"]), train_dir="t", eval_dir="e")
"""

from __future__ import annotations

from trainers.common.steps import Evaluation, TrainerSteps
from trainers.llm.__main__ import parser
from trainers.llm.presets import get_preset


def prepare(cfg, **dirs) -> dict:
    from trainers.llm.data import prepare as prepare_splits

    return prepare_splits(cfg, **dirs)


def numbers(manifest: dict) -> dict:
    pack = manifest["pack"]
    counts = {"rows": manifest["num_rows"], "seq_len": manifest["seq_len"]}
    return counts | {k: pack[k] for k in ("tokens", "target_tokens", "truncated", "dropped")}


def describe(manifest: dict) -> str:
    return (
        f"{manifest['num_records']} records, {manifest['num_rows']} packed rows, "
        f"{manifest['pack']['tokens']} tokens"
    )


def evaluate(model_uri: str, eval_dir: str, **limits) -> Evaluation:
    from trainers.llm.evaluate import evaluate_model

    return evaluate_model(model_uri, eval_dir, **limits)


STEPS = TrainerSteps(
    name="llm",
    module="trainers.llm",
    parser=parser,
    get_preset=get_preset,
    prepare=prepare,
    numbers=numbers,
    describe=describe,
    evaluate=evaluate,
    gate_metrics=("exact_match", "neg_eval_loss"),
)
