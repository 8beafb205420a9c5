"""The llm-finetune pipeline: prepare_data -> train -> evaluate -> gate -> register -> deploy.

    liftoff run llm-finetune --preset debug                 # local target, about 2 minutes
    liftoff compile llm-finetune --hardware a100x1 -o llm-finetune.yaml
    liftoff submit llm-finetune --project P --region R --pipeline-root gs://B/root

One definition for both targets (pipelines/targets.py). Every W&B run of one pipeline run shares
its group (the pipeline job name); each step's job_type is the step's name.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Metrics, Model

from components.evaluate.component import evaluate
from components.gate.component import gate
from components.prepare_data.component import prepare_data
from components.train.component import train

NAME = "llm-finetune"
SUMMARY = "supervised fine-tuning of a causal LM (full or LoRA), gated register and deploy"
DEFAULT_HARDWARE = "a100x1"
SAMPLE_PROMPTS = ["What is 12 + 7?", "What is 40 - 15?"]


class Outputs(NamedTuple):
    model: Model
    metrics: Metrics
    gate: float


def build(target):
    """The pipeline function for `target` (a LocalTarget or a VertexTarget)."""
    train_op = target.training_op(train)

    @dsl.pipeline(name=NAME, description=SUMMARY)
    def llm_finetune(
        preset: str = "debug",
        data: str = "",
        eval_data: str = "",
        overrides: list = [],  # noqa: B006 - section.field=value, as the trainer's --set
        max_steps: int = 0,
        seed: int = -1,
        lora: bool = False,
        on_bad_record: str = "error",
        gate_metric: str = "exact_match",
        gate_threshold: float = 0.05,
        model_name: str = "llm-finetune",
        version_aliases: list = [],  # noqa: B006
        model_labels: dict = {},  # noqa: B006
        sample_prompts: list = SAMPLE_PROMPTS,
        wandb_project: str = "liftoff",
        wandb_secret: str = "",
        service_account: str = "",
        base_output_dir: str = "",
        parent_model: str = "",
        endpoint: str = "",
        traffic_split: dict = {"0": 100},  # noqa: B006
    ) -> Outputs:
        group = dsl.PIPELINE_JOB_NAME_PLACEHOLDER
        tracking = {
            "wandb_project": wandb_project,
            "wandb_secret": wandb_secret,
            "wandb_dir": target.wandb_dir,
            "run_group": group,
        }
        prepared = prepare_data(
            preset=preset,
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
            overrides=overrides,
            max_steps=max_steps,
            seed=seed,
            lora=lora,
            **{k: v for k, v in tracking.items() if k != "wandb_dir"},
        )
        scored = evaluate(
            model=trained.outputs["model"],
            eval_data=prepared.outputs["eval_data"],
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
                instances=sample_prompts,
                endpoint=endpoint,
                traffic_split=traffic_split,
            )
        return Outputs(trained.outputs["model"], scored.outputs["metrics"], scored.outputs["gate"])

    return llm_finetune
