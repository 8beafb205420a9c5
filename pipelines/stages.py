"""The DAG every liftoff training pipeline shares: prepare_data -> train -> evaluate -> gate,
then register -> deploy only when the gate passes.

    def my_pipeline(preset: str = "debug", ...) -> stages.Outputs:   # inside build(target)
        return stages.chain(target, train_op, trainer="vlm", preset=preset, ...)

A pipeline module declares its parameters and their defaults (KFP reads them from its pipeline
function's signature) and wires them in with `chain`; `trainer` picks the trainer each
component works for. Every W&B run of one pipeline run shares its group (the pipeline job
name); each step's job_type is the step's name.
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


def chain(
    target,
    train_op,
    *,
    trainer: str,
    preset,
    data,
    eval_data,
    overrides,
    max_steps,
    seed,
    lora,
    on_bad_record,
    gate_metric,
    gate_threshold,
    model_name,
    version_aliases,
    model_labels,
    instances,
    wandb_project,
    wandb_secret,
    service_account,
    base_output_dir,
    parent_model,
    endpoint,
    traffic_split,
) -> Outputs:
    """The tasks, called inside a pipeline function; the other arguments are its parameters.
    `train_op` is `target.training_op(train)`, made outside the pipeline function (kfp#9320)."""
    tracking = {
        "wandb_project": wandb_project,
        "wandb_secret": wandb_secret,
        "wandb_dir": target.wandb_dir,
        "run_group": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    }
    prepared = prepare_data(
        preset=preset,
        trainer=trainer,
        data=data,
        eval_source=eval_data,
        overrides=overrides,
        on_bad_record=on_bad_record,
        **tracking,
    )
    trained = target.train(
        train_op,
        service_account=service_account,
        base_output_dir=base_output_dir,
        train_data=prepared.outputs["train_data"],
        eval_data=prepared.outputs["eval_data"],
        preset=preset,
        trainer=trainer,
        overrides=overrides,
        max_steps=max_steps,
        seed=seed,
        lora=lora,
        **{k: v for k, v in tracking.items() if k != "wandb_dir"},
    )
    scored = evaluate(
        model=trained.outputs["model"],
        eval_data=prepared.outputs["eval_data"],
        trainer=trainer,
        gate_metric=gate_metric,
        **tracking,
    )
    verdict = gate(value=scored.outputs["gate"], threshold=gate_threshold, metric=gate_metric)
    with dsl.If(verdict.output == True, name="gate-passed"):  # noqa: E712 - a KFP condition
        registered = target.register(
            model=trained.outputs["model"],
            eval_metrics=scored.outputs["metrics"],
            model_uri=scored.outputs["model_uri"],
            model_name=model_name,
            aliases=version_aliases,
            labels=model_labels,
            parent_model=parent_model,
        )
        target.deploy(
            registered=registered,
            model_name=model_name,
            instances=instances,
            endpoint=endpoint,
            traffic_split=traffic_split,
        )
    return Outputs(trained.outputs["model"], scored.outputs["metrics"], scored.outputs["gate"])
