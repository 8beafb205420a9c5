"""prepare_data: raw records (JSONL/Parquet, local or gs://) or the trainer's synthetic debug
set → validated, deduplicated, content-hash split train/eval directories in the trainer's
prepared format (the LLM's packed shards, the VLM's records with their images).

    metadata = prepare_data(trainer="llm", train_dir="out/train", eval_dir="out/eval",
                            argv=["--preset", "debug"])   # {"train": {...}, "eval": {...}}
"""

from __future__ import annotations

from components.common import step_tracker, trainer_steps, use_run_group
from trainers.common.logs import log

SPLITS = ("train", "eval")


def prepare_data(
    *,
    trainer: str,
    train_dir: str,
    eval_dir: str,
    argv: list[str],
    run_group: str = "",
    wandb_dir: str = "",
) -> dict[str, dict]:
    """Write both splits; log their numbers and the dataset artifacts to W&B; return each
    split's numbers (the Dataset artifact's metadata)."""
    use_run_group(run_group, wandb_dir, step="prepare_data")
    steps = trainer_steps(trainer)
    cfg = steps.config(argv)
    manifests = steps.prepare(cfg, train_dir=train_dir, eval_dir=eval_dir)
    metadata = {split: steps.dataset_metadata(manifests[split]) for split in SPLITS}
    tracker = step_tracker(cfg, job_type="prepare_data", wandb_dir=wandb_dir)
    tracker.log(_flat(metadata), step=0)
    for split, uri in zip(SPLITS, (train_dir, eval_dir), strict=True):
        manifest = manifests[split]
        tracker.log_artifact(
            name=f"dataset-{split}-{manifest['fingerprint']}",
            type="dataset",
            uri=uri,
            metadata=manifest,
        )
        log(
            f"prepare_data: {split} {steps.describe(manifest)}; "
            f"{manifest['skipped_records']} bad records skipped, "
            f"{manifest['duplicates_removed']} duplicates removed"
        )
    tracker.finish()
    return metadata


def _flat(metadata: dict[str, dict]) -> dict[str, float]:
    return {
        f"data/{split}_{key}": float(value)
        for split in SPLITS
        for key, value in metadata[split].items()
        if key != "fingerprint"
    }
