"""The pipeline's prepare step for image-text data: records validated, deduplicated and split,
every image read and decoded once, and each split written as a self-contained directory.

    stats = prepare(cfg, train_dir="out/train", eval_dir="out/eval")

A prepared directory (local, gs:// or /gcs/) has the common layout (trainers.common.prepared:
`manifest.json` with the counts and fingerprint, `records.jsonl`), and the records' images are
relative paths into `images/` (one file per distinct image, named by content hash, original
bytes). The trainer reads it like any records file, so training never meets an unreadable image
it could have found here.
"""

from __future__ import annotations

from trainers.common import prepared
from trainers.vlm.config import VLMConfig
from trainers.vlm.data import base_dir, load_records
from trainers.vlm.examples import is_vqa
from trainers.vlm.images import ImageError, read_image_bytes, verify

FORMAT = "liftoff-image-text-v1"


def prepare(cfg: VLMConfig, **dirs: str) -> dict:
    """Write both splits of `cfg.data` (`train_dir=`, `eval_dir=`); return
    `{"train": manifest, "eval": manifest}`."""
    return prepared.write_file_splits(
        cfg, load=load_records, store=_store_image, counts=_counts, format=FORMAT, **dirs
    )


def _store_image(item: tuple[str, dict], local: str) -> tuple[dict, str | None]:
    """The record pointing at its image's copy under images/, or what is wrong with the image."""
    where, record = item
    try:
        data = read_image_bytes(record["image"], base_dir=base_dir(where))
        verify(data)  # the whole file decodes: truncated images fail here
    except ImageError as err:
        return record, f"{where}: {err}"
    return {**record, "image": prepared.store_file(data, local)}, None


def _counts(records: list[dict]) -> dict:
    return {
        "vqa_records": sum(is_vqa(r) for r in records),
        "caption_records": sum(not is_vqa(r) for r in records),
    }
