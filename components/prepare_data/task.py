"""prepare_data: raw records (JSONL/Parquet, local or gs://) or the synthetic debug set →
validated, deduplicated, content-hash split, tokenized and packed train/eval directories.

    prepare_data(train_dir="out/train", eval_dir="out/eval", argv=["--preset", "debug"])
"""

from __future__ import annotations

from components.common import llm_config, step_tracker, use_run_group
from trainers.llm import prepared


def prepare_data(
    *, train_dir: str, eval_dir: str, argv: list[str], run_group: str = "", wandb_dir: str = ""
) -> dict:
    """Write both splits; log their stats and the dataset artifact to W&B; return the stats."""
    use_run_group(run_group, wandb_dir)
    cfg = llm_config(argv)
    stats = prepared.prepare(cfg, train_dir=train_dir, eval_dir=eval_dir)
    tracker = step_tracker(cfg, job_type="prepare_data", wandb_dir=wandb_dir)
    tracker.log(_flat(stats), step=0)
    for split, uri in (("train", train_dir), ("eval", eval_dir)):
        manifest = stats[split]
        tracker.log_artifact(
            name=f"dataset-{split}-{manifest['fingerprint']}",
            type="dataset",
            uri=uri,
            metadata=manifest,
        )
    tracker.finish()
    for split in ("train", "eval"):
        s = stats[split]
        print(
            f"prepare_data: {split} {s['num_records']} records, {s['num_rows']} packed rows, "
            f"{s['pack']['tokens']} tokens; {s['skipped_records']} bad records skipped, "
            f"{s['duplicates_removed']} duplicates removed",
            flush=True,
        )
    return stats


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


def _flat(stats: dict) -> dict:
    return {
        f"data/{split}_{key}": float(value)
        for split in ("train", "eval")
        for key, value in artifact_metadata(stats[split]).items()
        if key != "fingerprint"
    }
