"""Read JSONL or Parquet records (a file or a directory of them; local, gs:// or /gcs/).

    records, skipped = read_records("gs://b/train.jsonl", validate=check_record, on_bad="skip")
    split = split_records(located, evals=None, eval_fraction=0.05)   # what every trainer trains on

A bad record — a malformed JSON line, bytes that are not UTF-8, a missing field or a wrong
type — raises `DataError` naming the file and line (Parquet: row), or is skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from trainers.common import storage
from trainers.common.config import ConfigError

SUFFIXES = (".jsonl", ".json", ".parquet")
Validator = Callable[[dict], str | None]  # returns what is wrong, or None
SYNTHETIC = "synthetic"  # where generated records come from (they have no file)
Located = tuple[str, dict]  # (where the record is: "file:line" or "file: row N", the record)


class DataError(ValueError):
    """A problem with input data; the message is one line that names where it is."""


def read_records(uri: str, *, validate: Validator, on_bad: str = "error") -> tuple[list[dict], int]:
    """All valid records of `uri` in order, and how many bad ones were skipped."""
    located, skipped = read_located_records(uri, validate=validate, on_bad=on_bad)
    return [record for _, record in located], skipped


def read_located_records(
    uri: str, *, validate: Validator, on_bad: str = "error"
) -> tuple[list[tuple[str, dict]], int]:
    """Like `read_records`, each record with where it is ("file:line" or "file: row N"), for
    errors found later (an unreadable image) to name it."""
    located, skipped = [], 0
    for path in _data_files(uri):
        for where, record, problem in _iter_file(path):
            problem = problem or validate(record)
            if problem is None:
                located.append((where, record))
            elif on_bad == "skip":
                skipped += 1
            else:
                raise DataError(f"{where}: {problem}")
    if not located:
        raise DataError(f"{uri}: no usable records" + (f" ({skipped} skipped)" if skipped else ""))
    return located, skipped


def base_dir(where: str) -> str:
    """The directory of the records file a record came from ("file:line" or "file: row N"):
    what its relative image path is relative to. Records stay as written, so the split and
    fingerprint do not depend on where the data lives."""
    source = where.rsplit(":", 1)[0]
    return (
        posixpath.dirname(source) if storage.is_remote(source) else os.path.dirname(source) or "."
    )


def record_key(record: dict) -> str:
    """A record's content as canonical JSON: equal records, equal keys, whatever the format.
    Raw bytes (a Parquet image column) stand in as their SHA-256."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=_bytes_digest)


def _bytes_digest(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def is_eval(record: dict, fraction: float) -> bool:
    """Split by content hash, so a record lands on the same side on every run and machine."""
    key = json.dumps(record, sort_keys=True, default=_bytes_digest)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def fingerprint(records: list[dict]) -> str:
    """A content hash of the records in order, stable across file formats."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(record_key(record).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _data_files(uri: str) -> list[str]:
    if uri.endswith(SUFFIXES):
        if not storage.exists(uri):
            raise DataError(f"{uri}: no such file")
        return [uri]
    names = [n for n in storage.list_names(uri) if n.endswith(SUFFIXES)]
    if not names:
        raise DataError(f"{uri}: not a .jsonl/.parquet file or a directory holding some")
    return [storage.join(uri, n) for n in names]


def _iter_file(path: str) -> Iterator[tuple[str, dict, str | None]]:
    if path.endswith(".parquet"):
        yield from _iter_parquet(path)
    else:
        yield from _iter_jsonl(path)


def _iter_jsonl(path: str) -> Iterator[tuple[str, dict, str | None]]:
    data = storage.read_bytes(path)  # one whole read, retried as one when storage falters
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        yield f"{path}:{number}", *_parse_line(raw)


def _parse_line(raw: bytes) -> tuple[dict, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return {}, f"not UTF-8 (byte {err.start})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return {}, f"malformed JSON ({err.msg} at column {err.colno})"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, got {type(record).__name__}"
    return record, None


def _iter_parquet(path: str) -> Iterator[tuple[str, dict, str | None]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = storage.read_bytes(path)
    try:
        rows = pq.read_table(pa.BufferReader(data)).to_pylist()
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None
    for number, row in enumerate(rows, start=1):
        yield f"{path}: row {number}", row, None


def dedupe(records: list[dict]) -> tuple[list[dict], int]:
    """Records with exact duplicates removed (first occurrence kept), and how many went."""
    kept, removed = dedupe_located([("", r) for r in records])
    return [r for _, r in kept], removed


def dedupe_located(located: list[Located]) -> tuple[list[Located], int]:
    seen, kept = set(), []
    for where, record in located:
        key = record_key(record)
        if key not in seen:
            seen.add(key)
            kept.append((where, record))
    return kept, len(located) - len(kept)


@dataclass
class Split:
    train: list[Located]
    eval: list[Located]
    duplicates_removed: int  # within either split, and eval records also in train

    @property
    def train_records(self) -> list[dict]:
        return [record for _, record in self.train]

    @property
    def eval_records(self) -> list[dict]:
        return [record for _, record in self.eval]


def load_split(
    train: str,
    eval: str,
    *,
    validate: Validator,
    on_bad: str,
    eval_fraction: float,
    synthetic: Callable[[], list[dict]],
) -> tuple[Split, int]:
    """The split of the records at `train` (or of `synthetic()` when it is "") and `eval` (or
    a content-hash share of `train` when it is ""), and how many bad records were skipped."""
    if train:
        located, skipped = read_located_records(train, validate=validate, on_bad=on_bad)
    else:
        located, skipped = [(f"{SYNTHETIC}:{i + 1}", r) for i, r in enumerate(synthetic())], 0
    evals = None
    if eval:
        evals, more = read_located_records(eval, validate=validate, on_bad=on_bad)
        skipped += more
    return split_records(located, evals=evals, eval_fraction=eval_fraction), skipped


def split_records(
    located: list[Located], *, evals: list[Located] | None, eval_fraction: float
) -> Split:
    """The train and eval records every trainer and the pipeline's prepare step use: `evals`,
    or else the records of `located` that the content hash puts in eval; exact duplicates
    removed within each split, and eval records that are also in train dropped (they would
    inflate eval scores)."""
    if evals is None:
        evals = [(w, r) for w, r in located if is_eval(r, eval_fraction)]
        located = [(w, r) for w, r in located if not is_eval(r, eval_fraction)]
    train, train_dupes = dedupe_located(located)
    evals, eval_dupes = dedupe_located(evals)
    train_keys = {record_key(r) for _, r in train}
    kept = [(w, r) for w, r in evals if record_key(r) not in train_keys]
    if not kept:
        raise ConfigError(
            f"data: the eval split is empty (data.eval_fraction={eval_fraction}); raise "
            "data.eval_fraction or set --eval-data to records that are not training records"
        )
    return Split(train, kept, train_dupes + eval_dupes + len(evals) - len(kept))
