"""The on-disk layout of a prepared split, the pipeline's prepare_data output, for every trainer:

    <split>/manifest.json    the format name, counts and fingerprint (the Dataset's metadata)
    <split>/records.jsonl    the split's records, after validation, dedupe and the split
    <split>/...              what the trainer adds (packed shards and tokenizer/, or images/)

    name = store_file(image_bytes, local_dir)       # "images/<content hash>": the record's path
    write_split(local_dir, records=records, manifest={"format": FORMAT, ...})   # then upload
    if is_prepared(uri): manifest = read_manifest(uri, format=FORMAT)
    stats = write_file_splits(cfg, load=..., store=..., counts=..., format=FORMAT, ...)

Trainers, the components and the tests name these files through this module only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from trainers.common import storage
from trainers.common.records import DataError, fingerprint

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
IMAGES = "images"  # the files records point at, one per distinct content


def is_prepared(uri: str) -> bool:
    """Whether `uri` is a prepared split directory (local, gs:// or /gcs/)."""
    return bool(uri) and not uri.endswith(".jsonl") and storage.exists(storage.join(uri, MANIFEST))


def records_uri(uri: str) -> str:
    """A prepared split reads as its records file; anything else is a records source as is."""
    return storage.join(uri, RECORDS) if is_prepared(uri) else uri


def write_split(local_dir: str, *, records: list[dict], manifest: dict) -> None:
    """The records and the manifest of a split, into a local directory (written last: the
    manifest is what makes the directory count as prepared)."""
    with open(os.path.join(local_dir, RECORDS), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(os.path.join(local_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)


def read_manifest(uri: str, *, format: str) -> dict:
    """The manifest of the prepared split at `uri`; a directory of another format is a
    DataError naming what it is."""
    manifest = json.loads(storage.read_text(storage.join(uri, MANIFEST)))
    if manifest.get("format") != format:
        raise DataError(
            f"{uri}: a prepared split of format {manifest.get('format')!r}, not {format!r} "
            "(prepared for another trainer?)"
        )
    return manifest


def read_records(uri: str) -> list[dict]:
    """The records of the prepared split at `uri`, in order."""
    text = storage.read_text(storage.join(uri, RECORDS))
    return [json.loads(line) for line in text.splitlines() if line]


def store_file(data: bytes, local_dir: str) -> str:
    """`data` under `local_dir`/images/, named by its content hash (stored once however many
    records share it); returns the path a record gives, relative to the split."""
    name = f"{IMAGES}/{hashlib.sha256(data).hexdigest()[:32]}"
    path = os.path.join(local_dir, name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return name


def stored_files(local_dir: str) -> tuple[int, int]:
    """(how many files, how many bytes) `store_file` put under `local_dir`."""
    folder = os.path.join(local_dir, IMAGES)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return len(names), sum(os.path.getsize(os.path.join(folder, n)) for n in names)


READERS = 16  # files are read concurrently: from gs:// each read is a round trip
# (where, record), local dir -> (the record pointing at its stored files, what is wrong or None)
StoreFiles = Callable[[tuple[str, dict], str], tuple[dict, str | None]]


def write_file_splits(
    cfg,
    *,
    load: Callable,
    store: StoreFiles,
    counts: Callable[[list[dict]], dict],
    format: str,
    train_dir: str,
    eval_dir: str,
) -> dict:
    """Write the train and eval splits of `cfg.data`'s records that point at files (images,
    masks): `load(cfg)` gives the split (located records) and the count skipped; `store` copies
    each record's files once under images/; a record whose files are bad stops the run, or with
    `data.on_bad_record=skip` is dropped and counted; `counts` adds the trainer's own numbers
    to each manifest. Returns `{"train": manifest, "eval": manifest}`."""
    split, skipped = load(cfg)
    on_bad_record, source = cfg.data.on_bad_record, cfg.data.eval or cfg.data.train
    common = {"duplicates_removed": split.duplicates_removed}
    stats = {}
    for name, located, uri in (("train", split.train, train_dir), ("eval", split.eval, eval_dir)):
        stats[name] = _write_file_split(
            uri,
            located,
            store=store,
            on_bad_record=on_bad_record,
            describe=lambda records, bad: {
                "format": format,
                "num_records": len(records),
                **counts(records),
                "skipped_records": skipped + bad,
                "fingerprint": fingerprint(records),
                **common,
            },
        )
    if not stats["eval"]["num_records"]:
        raise DataError(f"{source}: no eval record has a readable image")
    return stats


def _write_file_split(uri: str, located, *, store, on_bad_record: str, describe) -> dict:
    with tempfile.TemporaryDirectory(prefix="liftoff-prepare-") as local:
        with ThreadPoolExecutor(READERS) as pool:
            results = list(pool.map(lambda item: store(item, local), located))
        bad = [problem for _, problem in results if problem]
        if bad and on_bad_record == "error":
            raise DataError(bad[0])
        records = [record for record, problem in results if not problem]
        num_files, files_bytes = stored_files(local)
        manifest = describe(records, len(bad))
        manifest |= {"num_images": num_files, "images_bytes": files_bytes}
        write_split(local, records=records, manifest=manifest)
        storage.upload_dir(local, uri)
    return manifest
