"""Read back what an offline W&B run wrote, for assertions (wandb 0.31 ships no reader).

    isolate(monkeypatch, tmp_path)           # offline, every W&B path under tmp_path
    ...  run the code under test  ...
    run = read_run(tmp_path)                 # the one run-*.wandb under tmp_path
    assert run.config["optim"]["lr"] == 0.001
    assert run.history[-1]["global_step"] == 2

A `run-<id>.wandb` file is a LevelDB log, as written by wandb-core (core/pkg/leveldb):
a 7-byte header (":W&B", uint16 0xBEE1, version 0) that counts as the start of the first
32 KiB block, then chunks of `crc32 (IEEE, over type byte + payload) | uint16 length |
type byte` + payload; FIRST/MIDDLE/LAST chunks make one record, a block tail too short for
a chunk header is zero padding. Each record is a `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HEADER = struct.Struct("<4sHB")
MAGIC = (b":W&B", 0xBEE1, 0)
CHUNK = struct.Struct("<IHB")
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class Artifact:
    name: str
    type: str
    aliases: list[str]
    metadata: dict
    entries: dict[str, dict]  # path -> {"digest", "ref", "size", "local_path"}
    used: bool  # logged with use_after_commit: an input of the run once synced


@dataclass
class RunRecords:
    run_id: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    config: dict = field(default_factory=dict)  # without W&B's own "_wandb" key
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)  # define_metric calls
    artifacts: list[Artifact] = field(default_factory=list)
    exit_code: int | None = None
    records: list = field(default_factory=list)  # every Record, for anything else

    @property
    def used_artifacts(self) -> list[Artifact]:
        return [a for a in self.artifacts if a.used]

    @property
    def logged_artifacts(self) -> list[Artifact]:
        return [a for a in self.artifacts if not a.used]

    def artifact(self, name: str) -> Artifact:
        matches = [a for a in self.artifacts if a.name == name]
        assert len(matches) == 1, f"{len(matches)} artifacts named {name!r}"
        return matches[0]


def isolate(monkeypatch: pytest.MonkeyPatch, root: str | os.PathLike) -> None:
    """Offline W&B with every file under `root`; any attempt to go online fails on loopback.

    wandb reads its environment once per process (its `setup` singleton), so this tears
    that session down first: the next `wandb.init` then sees exactly this environment.
    """
    import wandb

    wandb.teardown()
    for var in ("WANDB_API_KEY", "WANDB_RUN_GROUP", "WANDB_LAUNCH", "WANDB_CONFIG", "WANDB_NAME"):
        # Set, then delete: monkeypatch then restores the absence even if the code under
        # test sets the variable (start_tracker puts the API key in os.environ).
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    for var, sub in [("DIR", "runs"), ("DATA_DIR", "data"), ("CACHE_DIR", "cache")]:
        monkeypatch.setenv(f"WANDB_{var}", os.path.join(root, sub))
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    monkeypatch.setenv("WANDB_CONFIG_DIR", os.path.join(root, "config"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", os.path.join(root, "artifacts"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")  # no Sentry
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: never W&B
    # wandb builds a google.cloud.storage client even for checksum-less gs:// references;
    # an emulator host makes it anonymous instead of hunting for credentials.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # google.auth: no metadata-server probing


def find_run_files(root: str | os.PathLike) -> list[Path]:
    """Every `run-*.wandb` under `root`, oldest run directory first."""
    return sorted(Path(root).rglob("run-*.wandb"), key=lambda p: p.parent.name)


def read_run(path: str | os.PathLike) -> RunRecords:
    """The run in file `path`, or the only run file under directory `path`."""
    path = Path(path)
    if path.is_dir():
        files = find_run_files(path)
        assert len(files) == 1, f"expected one run-*.wandb under {path}, found {files}"
        path = files[0]
    run = RunRecords()
    for record in read_records(path):
        run.records.append(record)
        kind = record.WhichOneof("record_type")
        if kind in _APPLY:
            _APPLY[kind](run, getattr(record, kind))
    return run


def read_records(path: str | os.PathLike) -> Iterator:
    """Every `Record` in a run file, in the order written."""
    from wandb.proto import wandb_internal_pb2

    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def _payloads(data: bytes) -> Iterator[bytes]:
    assert HEADER.unpack_from(data) == MAGIC, f"not a W&B run file: header {data[:7]!r}"
    parts: list[bytes] = []
    for kind, payload in _chunks(data):
        starts = kind in (FULL, FIRST)
        assert starts == (not parts), f"chunk type {kind} out of order"
        parts.append(payload)
        if kind in (FULL, LAST):
            yield b"".join(parts)
            parts = []
    assert not parts, "file ends inside a record"


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = HEADER.size
    while offset + CHUNK.size <= len(data):
        if BLOCK - offset % BLOCK < CHUNK.size:  # zero padding at the end of a block
            offset += BLOCK - offset % BLOCK
            continue
        crc, length, kind = CHUNK.unpack_from(data, offset)
        start = offset + CHUNK.size
        payload = data[start : start + length]
        assert len(payload) == length, f"truncated chunk at offset {offset}"
        assert zlib.crc32(bytes([kind]) + payload) == crc, f"bad CRC at offset {offset}"
        yield kind, payload
        offset = start + length
    assert offset == len(data), f"{len(data) - offset} stray bytes at the end"


def _value(item) -> object:
    """An item's value: `value_json` decoded, or the typed oneof some history items use."""
    typed = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if typed == "none":
        return None
    if typed is not None:
        value = getattr(item, typed)
        return json.loads(value) if typed == "json" else value
    return json.loads(item.value_json)


def _path(item) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _assign(target: dict, item) -> None:
    *parents, leaf = _path(item)
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = _value(item)


def _remove(target: dict, item) -> None:
    *parents, leaf = _path(item)
    for key in parents:
        target = target.get(key, {})
    target.pop(leaf, None)


def _apply_updates(target: dict, record) -> None:
    for item in record.update:
        _assign(target, item)
    for item in record.remove:
        _remove(target, item)
    target.pop("_wandb", None)


def _apply_run(run: RunRecords, record) -> None:
    run.run_id, run.project = record.run_id, record.project
    run.group, run.job_type, run.name = record.run_group, record.job_type, record.display_name
    _apply_updates(run.config, record.config)
    _apply_updates(run.summary, record.summary)


def _apply_history(run: RunRecords, record) -> None:
    row: dict = {}
    for item in record.item:
        _assign(row, item)
    run.history.append(row)


def _apply_metric(run: RunRecords, record) -> None:
    from google.protobuf import json_format

    run.metrics.append(json_format.MessageToDict(record, preserving_proto_field_name=True))


def _apply_artifact(run: RunRecords, record) -> None:
    entries = {
        entry.path: {
            "digest": entry.digest,
            "ref": entry.ref or None,
            "size": entry.size,
            "local_path": entry.local_path or None,
        }
        for entry in record.manifest.contents
    }
    metadata = json.loads(record.metadata) if record.metadata else {}
    used = record.use_after_commit
    run.artifacts.append(
        Artifact(record.name, record.type, list(record.aliases), metadata, entries, used)
    )


def _apply_exit(run: RunRecords, record) -> None:
    run.exit_code = record.exit_code


_APPLY = {
    "run": _apply_run,
    "config": lambda run, record: _apply_updates(run.config, record),
    "summary": lambda run, record: _apply_updates(run.summary, record),
    "history": _apply_history,
    "metric": _apply_metric,
    "artifact": _apply_artifact,
    "exit": _apply_exit,
}
