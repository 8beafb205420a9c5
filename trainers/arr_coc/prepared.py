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

from trainers.arr_coc.config import ArrCocConfig
from trainers.arr_coc.data import HARD_FIELD, load_records
from trainers.arr_coc.records import load_images, read_bytes
from trainers.common import prepared
from trainers.common.records import DataError, base_dir

FORMAT = "liftoff-arr-coc-vqa-v1"
FILE_KEYS = ("image", "mask")


def prepare(cfg: ArrCocConfig, **dirs: str) -> dict:
    """Write both splits of `cfg.data` (`train_dir=`, `eval_dir=`); return
    `{"train": manifest, "eval": manifest}`."""
    return prepared.write_file_splits(
        cfg, load=load_records, store=_store_files, counts=_counts, format=FORMAT, **dirs
    )


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


def _counts(records: list[dict]) -> dict:
    return {
        "masked_records": sum("mask" in r or "boxes" in r for r in records),
        "hard_records": sum(bool(r.get(HARD_FIELD)) for r in records),
    }
