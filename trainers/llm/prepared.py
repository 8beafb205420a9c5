"""The LLM trainer's prepared split: records tokenized and packed once, ahead of training (the
pipeline's prepare_data step, `trainers.llm.data.prepare`), in a directory the trainer reads
directly.

    write("out/train", packed=packed, records=records, tokenizer=tok, manifest=counts)
    split = load("out/train", local_dir=tmp, seq_len=512)   # split.packed, .records, .manifest

Besides the common layout (trainers.common.prepared: manifest.json, records.jsonl) a split
holds `shard-NNNNN.safetensors` (packed rows) and `tokenizer/` (the tokenizer that produced the
ids, trained in-process for the debug preset). Local, gs:// or /gcs/.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import torch

from trainers.common import prepared, storage
from trainers.common.config import ConfigError
from trainers.common.packing import Packed, PackStats
from trainers.common.records import fingerprint

FORMAT = "liftoff-packed-v1"
TOKENIZER_DIR = "tokenizer"
ROWS_PER_SHARD = 4096
_TENSORS = ("input_ids", "position_ids", "targets", "row_tokens", "row_targets")


@dataclasses.dataclass
class Prepared:
    packed: Packed
    records: list[dict]
    manifest: dict
    tokenizer_dir: str  # a local copy


def write(
    uri: str, *, packed: Packed, records: list[dict], tokenizer, seq_len: int, counts: dict
) -> dict:
    """Write one split to `uri`; return its manifest (`counts` are added to it)."""
    from safetensors.torch import save_file

    manifest = {
        "format": FORMAT,
        "seq_len": seq_len,
        "num_records": len(records),
        "num_rows": len(packed.input_ids),
        "fingerprint": fingerprint(records),
        "pack": dataclasses.asdict(packed.stats),
        "shards": [],
        **counts,
    }
    with tempfile.TemporaryDirectory(prefix="liftoff-prepared-") as local:
        for start in range(0, len(packed.input_ids), ROWS_PER_SHARD):
            name = f"shard-{start // ROWS_PER_SHARD:05d}.safetensors"
            rows = slice(start, start + ROWS_PER_SHARD)
            tensors = {k: getattr(packed, k)[rows].to(torch.int32).contiguous() for k in _TENSORS}
            save_file(tensors, os.path.join(local, name))
            manifest["shards"].append(name)
        tokenizer.save_pretrained(os.path.join(local, TOKENIZER_DIR))
        prepared.write_split(local, records=records, manifest=manifest)
        storage.upload_dir(local, uri)
    return manifest


def load(uri: str, *, local_dir: str, seq_len: int | None = None) -> Prepared:
    """Read a prepared split (packed for `seq_len`, when given); `local_dir` receives the
    downloaded copy of a remote one."""
    from safetensors.torch import load_file

    manifest = prepared.read_manifest(uri, format=FORMAT)
    if seq_len is not None and manifest["seq_len"] != seq_len:
        raise ConfigError(
            f"data.seq_len={seq_len} is invalid: {uri} is packed for seq_len={manifest['seq_len']}"
        )
    local = storage.download_dir(uri, local_dir) if storage.is_remote(uri) else uri
    shards = [load_file(os.path.join(local, name)) for name in manifest["shards"]]
    tensors = {k: torch.cat([s[k] for s in shards]).long() for k in _TENSORS}
    packed = Packed(**tensors, stats=PackStats(**manifest["pack"]))
    records = prepared.read_records(local)
    return Prepared(packed, records, manifest, os.path.join(local, TOKENIZER_DIR))
