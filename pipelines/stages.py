"""The DAG every liftoff training pipeline runs: prepare_data -> train (one task per declared
stage, each starting from the model before it) -> evaluate -> gate, then register -> deploy only
when the gate passes.

    outputs = chain(pipeline, target, train_ops, values)   # inside the factory's pipeline function

`pipeline` is the declaration (pipelines/declaration.py), `values` the pipeline function's
parameters by name; `target` says how each step runs (pipelines/targets.py). Every W&B run of
one pipeline run shares its group (the pipeline job name); each step's job_type is the step's
name.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model

from components.evaluate.component import evaluate
from components.gate.component import gate
from components.prepare_data.component import prepare_data


class Outputs(NamedTuple):
    model: Model
    metrics: Metrics
    gate: float


def chain(pipeline, target, train_ops: list, p: dict) -> Outputs:
    """The tasks, called inside a pipeline function. `train_ops`: one per declared stage,
    `target.training_op(train, stage=...)`, made outside the pipeline function (kfp#9320)."""
    tracking = {
        "wandb_project": p["wandb_project"],
        "wandb_secret": p["wandb_secret"],
        "run_group": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    }
    common = {"trainer": pipeline.trainer, "hf_secret": p["hf_secret"]}
    prepared = target.prepare_step(
        prepare_data(
            preset=p["preset"],
            data=p["data"],
            eval_source=p["eval_data"],
            overrides=p["overrides"],
            on_bad_record=p["on_bad_record"],
            wandb_dir=target.wandb_dir,
            **common,
            **tracking,
        )
    )
    model = _train(
        pipeline, target, train_ops, p, prepared=prepared, common=common, tracking=tracking
    )
    scored = target.evaluate_step(
        evaluate(
            model=model,
            eval_data=prepared.outputs["eval_data"],
            gate_metric=p["gate_metric"],
            wandb_dir=target.wandb_dir,
            **common,
            **tracking,
        )
    )
    verdict = gate(
        value=scored.outputs["gate"], threshold=p["gate_threshold"], metric=p["gate_metric"]
    )
    with dsl.If(verdict.output == True, name="gate-passed"):  # noqa: E712 - a KFP condition
        registered = target.register(
            model=model,
            eval_metrics=scored.outputs["metrics"],
            model_uri=scored.outputs["model_uri"],
            model_name=p["model_name"],
            aliases=p["version_aliases"],
            default_version=p["default_version"],
            labels=p["model_labels"],
            parent_model=p["parent_model"],
            hf_secret=p["hf_secret"],
        )
        target.deploy(
            registered=registered,
            model_name=p["model_name"],
            instances=p[pipeline.samples_param],
            endpoint=p["endpoint"],
            traffic_split=p["traffic_split"],
        )
    return Outputs(model, scored.outputs["metrics"], scored.outputs["gate"])


def _train(pipeline, target, train_ops: list, p: dict, *, prepared, common: dict, tracking: dict):
    """One task per stage; returns the last stage's Model."""
    model = None
    for stage, op in zip(pipeline.stages, train_ops, strict=True):
        start = {} if model is None else {"init_model": model}
        trained = target.train(
            op,
            stage=stage,
            train_data=prepared.outputs["train_data"],
            eval_data=prepared.outputs["eval_data"],
            preset=p["preset"],
            overrides=p["overrides"],
            max_steps=p["max_steps"],
            seed=p["seed"],
            lora=p["lora"],
            trainer_args=list(stage.trainer_args),
            **start,
            **common,
            **tracking,
        )
        model = trained.outputs["model"]
    return model
