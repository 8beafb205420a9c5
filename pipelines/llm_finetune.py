"""The llm-finetune pipeline: prepare_data -> train -> evaluate -> gate -> register -> deploy.

    liftoff run llm-finetune --preset debug                 # local target, about 2 minutes
    liftoff compile llm-finetune --hardware a100x1 -o llm-finetune.yaml
    liftoff submit llm-finetune --project P --region R --pipeline-root gs://B/root

One definition for both targets (pipelines/targets.py); the DAG is pipelines/stages.py, shared
with vlm-ddp.
"""

from kfp import dsl

from components.train.component import train
from pipelines import stages

NAME = "llm-finetune"
SUMMARY = "supervised fine-tuning of a causal LM (full or LoRA), gated register and deploy"
DEFAULT_HARDWARE = "a100x1"
SAMPLE_PROMPTS = ["What is 12 + 7?", "What is 40 - 15?"]


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
    ) -> stages.Outputs:
        return stages.chain(
            target,
            train_op,
            trainer="llm",
            preset=preset,
            data=data,
            eval_data=eval_data,
            overrides=overrides,
            max_steps=max_steps,
            seed=seed,
            lora=lora,
            on_bad_record=on_bad_record,
            gate_metric=gate_metric,
            gate_threshold=gate_threshold,
            model_name=model_name,
            version_aliases=version_aliases,
            model_labels=model_labels,
            instances=sample_prompts,
            wandb_project=wandb_project,
            wandb_secret=wandb_secret,
            service_account=service_account,
            base_output_dir=base_output_dir,
            parent_model=parent_model,
            endpoint=endpoint,
            traffic_split=traffic_split,
        )

    return llm_finetune
