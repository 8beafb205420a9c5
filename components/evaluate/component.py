"""The evaluate KFP component (see task.py)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import STAND_IN_IMAGE


@dsl.component(base_image=STAND_IN_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    eval_data: Input[Dataset],
    metrics: Output[Metrics],
    trainer: str = "llm",
    gate_metric: str = "exact_match",
    max_examples: int = 128,
    max_new_tokens: int = 32,
    wandb_project: str = "liftoff",
    wandb_secret: str = "",
    wandb_dir: str = "",
    run_group: str = "",
    hf_secret: str = "",
) -> NamedTuple("Outputs", gate=float, model_uri=str):
    """The trainer's eval metrics on the eval split (llm: perplexity and exact match; vlm: VQA
    exact match and caption loss); returns the gate metric and the model's URI (the register
    step imports the model by URI)."""
    from collections import namedtuple

    from components.evaluate.task import evaluate
    from trainers.common.secrets import HF_TOKEN_ENV, export_secret

    export_secret(hf_secret, variable=HF_TOKEN_ENV)  # a LoRA model's gated base
    result = evaluate(
        trainer=trainer,
        model_uri=model.path,
        eval_dir=eval_data.path,
        gate_metric=gate_metric,
        max_examples=max_examples,
        max_new_tokens=max_new_tokens,
        wandb_project=wandb_project,
        wandb_secret=wandb_secret,
        run_group=run_group,
        wandb_dir=wandb_dir,
    )
    for name, value in result["metrics"].items():
        metrics.log_metric(name, value)
    return namedtuple("Outputs", ["gate", "model_uri"])(result["gate"], model.uri)
