"""The pipeline's prepare step for ARR-COC: records validated, deduplicated and split (as the
trainer splits them), every image and mask decoded and checked once, and each split written as
a self-contained directory.

    stats = prepare(cfg, train_dir="out/train", eval_dir="out/eval")

A prepared directory has the common layout (trainers.common.prepared: `manifest.json`,
`records.jsonl`); each record's image and mask are relative paths into `images/` (one file per
distinct content, original bytes), boxes and the `hard` flag stay in the record. The debug
preset's rendered scenes (normal and hard) are written the same way. The trainer and the
evaluation read a prepared directory like any records file.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor

from trainers.arr_coc.config import ArrCocConfig
from trainers.arr_coc.data import HARD_FIELD, load_records
from trainers.arr_coc.records import load_images, read_bytes
from trainers.common import prepared, storage
from trainers.common.records import DataError, base_dir, fingerprint

FORMAT = "liftoff-arr-coc-vqa-v1"
READERS = 16  # images are read concurrently: from gs:// each read is a round trip
FILE_KEYS = ("image", "mask")


def prepare(cfg: ArrCocConfig, *, train_dir: str, eval_dir: str) -> dict:
    """Write both splits of `cfg.data`; return `{"train": manifest, "eval": manifest}`."""
    split, skipped = load_records(cfg)
    common = {"duplicates_removed": split.duplicates_removed}
    stats = {}
    for name, located, uri in (("train", split.train, train_dir), ("eval", split.eval, eval_dir)):
        stats[name] = _write_split(uri, located, cfg, skipped=skipped, common=common)
    if not stats["eval"]["num_records"]:
        raise DataError(f"{cfg.data.eval or cfg.data.train}: no eval record has a readable image")
    return stats


def _write_split(uri: str, located, cfg: ArrCocConfig, *, skipped: int, common: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="liftoff-prepare-") as local:
        with ThreadPoolExecutor(READERS) as pool:
            results = list(pool.map(lambda item: _store_files(item, local), located))
        bad = [problem for _, problem in results if problem]
        if bad and cfg.data.on_bad_record == "error":
            raise DataError(bad[0])
        records = [record for record, problem in results if not problem]
        manifest = _manifest(records, local, skipped=skipped + len(bad), common=common)
        prepared.write_split(local, records=records, manifest=manifest)
        storage.upload_dir(local, uri)
    return manifest


def _store_files(item: tuple[str, dict], local: str) -> tuple[dict, str | None]:
    """The record pointing at its image's (and mask's) copy under images/, or what is wrong."""
    where, record = item
    try:
        load_images(record, where=where, base_dir=base_dir(where))  # both decode, sizes agree
        stored = {
            key: prepared.store_file(
                read_bytes(record[key], key, where=where, base_dir=base_dir(where)), local
            )
            for key in FILE_KEYS
            if key in record
        }
    except DataError as err:
        return record, str(err)
    return {**record, **stored}, None


def _manifest(records: list[dict], local: str, *, skipped: int, common: dict) -> dict:
    num_images, images_bytes = prepared.stored_files(local)
    return {
        "format": FORMAT,
        "num_records": len(records),
        "masked_records": sum("mask" in r or "boxes" in r for r in records),
        "hard_records": sum(bool(r.get(HARD_FIELD)) for r in records),
        "num_images": num_images,
        "images_bytes": images_bytes,
        "skipped_records": skipped,
        "fingerprint": fingerprint(records),
        **common,
    }
