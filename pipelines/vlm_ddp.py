"""The vlm-ddp pipeline: a vision-language model trained with DistributedDataParallel, one
process per GPU on 8×A100 nodes; prepare_data -> train -> evaluate -> gate -> register -> deploy.

    liftoff run vlm-ddp --preset debug               # local target: DDP over 2 CPU processes
    liftoff compile vlm-ddp --nodes 2 --spot -o vlm-ddp.yaml     # a2-highgpu-8g ×2 nodes
    liftoff submit vlm-ddp --project P --region R --pipeline-root gs://B/root --nodes 2

The trainer (`python -m trainers.vlm`) relaunches itself under torchrun with one process per GPU;
more than one node makes a CustomJob of a primary pool and a worker pool (pipelines/targets.py).
The DAG is pipelines/stages.py, shared with llm-finetune.
"""

from kfp import dsl

from components.train.component import train
from pipelines import stages

NAME = "vlm-ddp"
SUMMARY = "a vision-language model trained with DDP on 8xA100 nodes, gated register and deploy"
DEFAULT_HARDWARE = "a100x8"
LOCAL_NPROC_PER_NODE = 2  # the local target's DDP: two gloo processes on the CPU
# The debug set's answer-prior baseline (trainers.vlm.evaluate.chance_exact_match) is about 0.3.
GATE_THRESHOLD = 0.4


def build(target):
    """The pipeline function for `target` (a LocalTarget or a VertexTarget)."""
    # Imported here: it brings in PIL, which listing the pipelines does not need.
    from trainers.vlm.synthetic import sample_instances

    train_op = target.training_op(train)
    instances = sample_instances()  # [{"image": {"b64": PNG}, "prompt": str}]

    @dsl.pipeline(name=NAME, description=SUMMARY)
    def vlm_ddp(
        preset: str = "debug",
        data: str = "",
        eval_data: str = "",
        overrides: list = [],  # noqa: B006 - section.field=value, as the trainer's --set
        max_steps: int = 0,
        seed: int = -1,
        lora: bool = False,
        on_bad_record: str = "error",
        gate_metric: str = "vqa_exact_match",
        gate_threshold: float = GATE_THRESHOLD,
        model_name: str = "vlm-ddp",
        version_aliases: list = [],  # noqa: B006
        model_labels: dict = {},  # noqa: B006
        sample_instances: list = instances,
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
            trainer="vlm",
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
            instances=sample_instances,
            wandb_project=wandb_project,
            wandb_secret=wandb_secret,
            service_account=service_account,
            base_output_dir=base_output_dir,
            parent_model=parent_model,
            endpoint=endpoint,
            traffic_split=traffic_split,
        )

    return vlm_ddp
