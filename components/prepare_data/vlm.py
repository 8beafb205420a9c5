"""prepare_data for the VLM trainer: image-text records (VQA and captions; JSONL/Parquet, local
or gs://) or the synthetic debug set → validated, deduplicated, content-hash split train/eval
directories, each a records.jsonl with its images beside it and a manifest.

    prepare_data(train_dir="out/train", eval_dir="out/eval", argv=["--preset", "debug"])
"""

from __future__ import annotations

from components.common import trainer_config, use_run_group
from components.prepare_data.task import log_splits
from trainers.vlm import prepared


def prepare_data(
    *, train_dir: str, eval_dir: str, argv: list[str], run_group: str = "", wandb_dir: str = ""
) -> dict:
    """Write both splits; log their stats and the dataset artifacts to W&B; return the stats."""
    use_run_group(run_group, wandb_dir)
    cfg = trainer_config(argv, trainer="vlm")
    stats = prepared.prepare(cfg, train_dir=train_dir, eval_dir=eval_dir)
    dirs = {"train": train_dir, "eval": eval_dir}
    log_splits(cfg, stats, dirs=dirs, metadata=artifact_metadata, wandb_dir=wandb_dir)
    for split in ("train", "eval"):
        s = stats[split]
        print(
            f"prepare_data: {split} {s['num_records']} records ({s['vqa_records']} VQA, "
            f"{s['caption_records']} captions), {s['images_bytes'] / 1e6:.1f} MB of images; "
            f"{s['skipped_records']} bad records skipped, "
            f"{s['duplicates_removed']} duplicates removed",
            flush=True,
        )
    return stats


def artifact_metadata(manifest: dict) -> dict:
    """The numbers a Dataset artifact carries (flat, so the Vertex UI shows them)."""
    return {
        "records": manifest["num_records"],
        "vqa_records": manifest["vqa_records"],
        "caption_records": manifest["caption_records"],
        "images_bytes": manifest["images_bytes"],
        "skipped_records": manifest["skipped_records"],
        "duplicates_removed": manifest["duplicates_removed"],
        "fingerprint": manifest["fingerprint"],
    }
