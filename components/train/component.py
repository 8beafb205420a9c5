"""The train KFP component (see task.py). On the vertex target `pipelines/targets.py` wraps it in
a CustomJob with a hardware profile; locally it runs as a subprocess of kfp.local."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import STAND_IN_IMAGE


@dsl.component(base_image=STAND_IN_IMAGE, install_kfp_package=False)
def train(
    train_data: Input[Dataset],
    eval_data: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    preset: str,
    trainer: str = "llm",
    overrides: list = [],  # noqa: B006 - KFP reads defaults from the signature
    max_steps: int = 0,
    seed: int = -1,
    lora: bool = False,
    checkpoint_dir: str = "",
    nproc_per_node: int = 1,
    wandb_project: str = "liftoff",
    wandb_secret: str = "",
    wandb_dir: str = "",
    run_group: str = "",
    hf_secret: str = "",
    trainer_args: list = [],  # noqa: B006
    init_model: Optional[Input[Model]] = None,  # noqa: UP045 - KFP reads Optional[...]
):
    """Train `trainer` ("llm": a causal LM, "vlm": a vision-language model) on the prepared
    shards; the model is an HF directory. `trainer_args` and `init_model` (the previous stage's
    model, as `--init-model DIR`) come from a multi-stage pipeline's stage."""
    from components.common import trainer_argv
    from components.train.task import final_metrics, train

    argv = trainer_argv(
        preset=preset,
        data=train_data.path,
        eval_data=eval_data.path,
        overrides=overrides,
        max_steps=max_steps,
        seed=seed,
        lora=lora,
        wandb_project=wandb_project,
        wandb_secret=wandb_secret,
    )
    argv += [*trainer_args, *(["--hf-secret", hf_secret] if hf_secret else [])]
    if init_model is not None:
        argv += ["--init-model", init_model.path]
    metadata = train(
        argv=argv,
        output_dir=model.path,
        trainer=trainer,
        checkpoint_dir=checkpoint_dir,
        nproc_per_node=nproc_per_node,
        run_group=run_group,
        wandb_dir=wandb_dir,
    )
    for name, value in final_metrics(metadata).items():
        metrics.log_metric(name, value)
    model.metadata.update(
        {
            "framework": "transformers",
            "preset": preset,
            "steps": metadata["steps"],
            "dataset_fingerprint": metadata["dataset"]["fingerprint"],
        }
    )
