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

import tempfile
from concurrent.futures import ThreadPoolExecutor

from trainers.common import prepared, storage
from trainers.common.records import DataError, fingerprint
from trainers.vlm.config import VLMConfig
from trainers.vlm.data import base_dir, load_records
from trainers.vlm.examples import is_vqa
from trainers.vlm.images import ImageError, read_image_bytes, verify

FORMAT = "liftoff-image-text-v1"
READERS = 16  # images are read concurrently: from gs:// each read is a round trip


def prepare(cfg: VLMConfig, *, train_dir: str, eval_dir: str) -> dict:
    """Write both splits of `cfg.data`; return `{"train": manifest, "eval": manifest}`."""
    split, skipped = load_records(cfg)
    common = {"duplicates_removed": split.duplicates_removed}
    stats = {}
    for name, located, uri in (("train", split.train, train_dir), ("eval", split.eval, eval_dir)):
        stats[name] = _write_split(uri, located, cfg, skipped=skipped, common=common)
    if not stats["eval"]["num_records"]:
        raise DataError(f"{cfg.data.eval or cfg.data.train}: no eval record has a readable image")
    return stats


def _write_split(uri: str, located, cfg: VLMConfig, *, skipped: int, common: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="liftoff-prepare-") as local:
        with ThreadPoolExecutor(READERS) as pool:
            results = list(pool.map(lambda item: _store_image(item, local, cfg), located))
        bad = [problem for _, problem in results if problem]
        if bad and cfg.data.on_bad_record == "error":
            raise DataError(bad[0])
        records = [record for record, problem in results if not problem]
        manifest = _manifest(records, local, skipped=skipped + len(bad), common=common)
        prepared.write_split(local, records=records, manifest=manifest)
        storage.upload_dir(local, uri)
    return manifest


def _store_image(item: tuple[str, dict], local: str, cfg: VLMConfig) -> tuple[dict, str | None]:
    """The record pointing at its image's copy under images/, or what is wrong with the image."""
    where, record = item
    try:
        data = read_image_bytes(record["image"], base_dir=base_dir(where))
        verify(data)  # the whole file decodes: truncated images fail here
    except ImageError as err:
        return record, f"{where}: {err}"
    return {**record, "image": prepared.store_file(data, local)}, None


def _manifest(records: list[dict], local: str, *, skipped: int, common: dict) -> dict:
    num_images, images_bytes = prepared.stored_files(local)
    return {
        "format": FORMAT,
        "num_records": len(records),
        "vqa_records": sum(is_vqa(r) for r in records),
        "caption_records": sum(not is_vqa(r) for r in records),
        "num_images": num_images,
        "images_bytes": images_bytes,
        "skipped_records": skipped,
        "fingerprint": fingerprint(records),
        **common,
    }
