"""The on-disk layout of a prepared split, the pipeline's prepare_data output, for every trainer:

    <split>/manifest.json    the format name, counts and fingerprint (the Dataset's metadata)
    <split>/records.jsonl    the split's records, after validation, dedupe and the split
    <split>/...              what the trainer adds (packed shards and tokenizer/, or images/)

    name = store_file(image_bytes, local_dir)       # "images/<content hash>": the record's path
    write_split(local_dir, records=records, manifest={"format": FORMAT, ...})   # then upload
    if is_prepared(uri): manifest = read_manifest(uri, format=FORMAT)

Trainers, the components and the tests name these files through this module only.
"""

from __future__ import annotations

import hashlib
import json
import os

from trainers.common import storage
from trainers.common.records import DataError

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
