"""The prepare_data KFP component (see task.py for the work)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import STAND_IN_IMAGE


@dsl.component(base_image=STAND_IN_IMAGE, install_kfp_package=False)
def prepare_data(
    train_data: Output[Dataset],
    eval_data: Output[Dataset],
    preset: str,
    trainer: str = "llm",
    data: str = "",
    eval_source: str = "",
    overrides: list = [],  # noqa: B006 - KFP reads defaults from the signature
    on_bad_record: str = "error",
    wandb_project: str = "liftoff",
    wandb_secret: str = "",
    wandb_dir: str = "",
    run_group: str = "",
    hf_secret: str = "",
):
    """Validate, deduplicate and split records into train/eval shards (`trainer` "llm" also
    tokenizes and packs them; "vlm" stores the images beside image-text records)."""
    from components.common import trainer_argv
    from components.prepare_data.task import prepare_data
    from trainers.common.secrets import HF_TOKEN_ENV, export_secret

    export_secret(hf_secret, variable=HF_TOKEN_ENV)  # a gated model's tokenizer
    argv = trainer_argv(
        preset=preset,
        data=data,
        eval_data=eval_source,
        overrides=[*overrides, f"data.on_bad_record={on_bad_record}"],
        wandb_project=wandb_project,
        wandb_secret=wandb_secret,
    )
    metadata = prepare_data(
        trainer=trainer,
        train_dir=train_data.path,
        eval_dir=eval_data.path,
        argv=argv,
        run_group=run_group,
        wandb_dir=wandb_dir,
    )
    train_data.metadata.update(metadata["train"])
    eval_data.metadata.update(metadata["eval"])
