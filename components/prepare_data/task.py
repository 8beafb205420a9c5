"""prepare_data: raw records (JSONL/Parquet, local or gs://) or the synthetic debug set →
validated, deduplicated, content-hash split, tokenized and packed train/eval directories.

    prepare_data(train_dir="out/train", eval_dir="out/eval", argv=["--preset", "debug"])

The VLM trainer's twin is vlm.py; both log their splits to W&B through `log_splits`.
"""

from __future__ import annotations

from collections.abc import Callable

from components.common import step_tracker, trainer_config, use_run_group
from trainers.llm import prepared


def prepare_data(
    *, train_dir: str, eval_dir: str, argv: list[str], run_group: str = "", wandb_dir: str = ""
) -> dict:
    """Write both splits; log their stats and the dataset artifact to W&B; return the stats."""
    use_run_group(run_group, wandb_dir)
    cfg = trainer_config(argv, trainer="llm")
    stats = prepared.prepare(cfg, train_dir=train_dir, eval_dir=eval_dir)
    dirs = {"train": train_dir, "eval": eval_dir}
    log_splits(cfg, stats, dirs=dirs, metadata=artifact_metadata, wandb_dir=wandb_dir)
    for split in ("train", "eval"):
        s = stats[split]
        print(
            f"prepare_data: {split} {s['num_records']} records, {s['num_rows']} packed rows, "
            f"{s['pack']['tokens']} tokens; {s['skipped_records']} bad records skipped, "
            f"{s['duplicates_removed']} duplicates removed",
            flush=True,
        )
    return stats


def log_splits(
    cfg, stats: dict, *, dirs: dict, metadata: Callable[[dict], dict], wandb_dir: str
) -> None:
    """Both splits' `metadata` numbers as step-0 metrics and each split as a dataset artifact
    (its whole manifest as the artifact's metadata)."""
    tracker = step_tracker(cfg, job_type="prepare_data", wandb_dir=wandb_dir)
    tracker.log(_flat(stats, metadata), step=0)
    for split, uri in dirs.items():
        manifest = stats[split]
        tracker.log_artifact(
            name=f"dataset-{split}-{manifest['fingerprint']}",
            type="dataset",
            uri=uri,
            metadata=manifest,
        )
    tracker.finish()


def artifact_metadata(manifest: dict) -> dict:
    """The numbers a Dataset artifact carries (flat, so the Vertex UI shows them)."""
    pack = manifest["pack"]
    return {
        "records": manifest["num_records"],
        "rows": manifest["num_rows"],
        "seq_len": manifest["seq_len"],
        "tokens": pack["tokens"],
        "target_tokens": pack["target_tokens"],
        "truncated": pack["truncated"],
        "dropped": pack["dropped"],
        "skipped_records": manifest["skipped_records"],
        "duplicates_removed": manifest["duplicates_removed"],
        "fingerprint": manifest["fingerprint"],
    }


def _flat(stats: dict, metadata: Callable[[dict], dict]) -> dict:
    return {
        f"data/{split}_{key}": float(value)
        for split in ("train", "eval")
        for key, value in metadata(stats[split]).items()
        if key != "fingerprint"
    }
