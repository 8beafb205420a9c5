"""Prepared datasets: records validated, deduplicated, split, tokenized and packed once, ahead of
training, into directories the trainer reads directly (the pipeline's prepare_data step).

    stats = prepare(cfg, train_dir="out/train", eval_dir="out/eval")   # cfg: LLMConfig
    python -m trainers.llm --data out/train --eval-data out/eval        # trains on the shards

A prepared directory (local, gs:// or /gcs/) holds `manifest.json`, `shard-NNNNN.safetensors`
(packed rows), `records.jsonl` (the split's records, for generation metrics and lineage) and
`tokenizer/` (the tokenizer that produced the ids, trained in-process for the debug preset).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

import torch

from trainers.common import storage
from trainers.common.packing import Packed, PackStats
from trainers.common.records import dedupe, fingerprint, record_key
from trainers.llm.config import LLMConfig

FORMAT = "liftoff-packed-v1"
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
TOKENIZER_DIR = "tokenizer"
ROWS_PER_SHARD = 4096
_TENSORS = ("input_ids", "position_ids", "targets", "row_tokens", "row_targets")


def is_prepared(uri: str) -> bool:
    return bool(uri) and storage.exists(storage.join(uri, MANIFEST))


def prepare(cfg: LLMConfig, *, train_dir: str, eval_dir: str) -> dict:
    """Write the train and eval splits of `cfg.data` as prepared directories; return the stats
    of both (`{"train": manifest, "eval": manifest}`)."""
    from trainers.llm.data import load_records, make_tokenizer, pack_records

    train, evals, skipped = load_records(cfg)
    train, train_dupes = dedupe(train)
    evals, eval_dupes = dedupe(evals)
    # A record in both splits (possible with a separate --eval-data) would inflate eval scores.
    train_keys = {record_key(r) for r in train}
    evals = [r for r in evals if record_key(r) not in train_keys]
    if not evals:
        raise ValueError("data: the eval split is empty; raise data.eval_fraction or set eval data")
    tokenizer = make_tokenizer(cfg, train)
    common = {"skipped_records": skipped, "duplicates_removed": train_dupes + eval_dupes}
    return {
        "train": _write(
            train_dir, pack_records(tokenizer, train, cfg), train, tokenizer, cfg, common
        ),
        "eval": _write(
            eval_dir, pack_records(tokenizer, evals, cfg), evals, tokenizer, cfg, common
        ),
    }


def _write(uri: str, packed: Packed, records: list[dict], tokenizer, cfg, common: dict) -> dict:
    from safetensors.torch import save_file

    manifest = {
        "format": FORMAT,
        "seq_len": cfg.data.seq_len,
        "num_records": len(records),
        "num_rows": len(packed.input_ids),
        "fingerprint": fingerprint(records),
        "pack": dataclasses.asdict(packed.stats),
        "shards": [],
        **common,
    }
    with tempfile.TemporaryDirectory(prefix="liftoff-prepared-") as local:
        for start in range(0, len(packed.input_ids), ROWS_PER_SHARD):
            name = f"shard-{start // ROWS_PER_SHARD:05d}.safetensors"
            rows = slice(start, start + ROWS_PER_SHARD)
            tensors = {k: getattr(packed, k)[rows].to(torch.int32).contiguous() for k in _TENSORS}
            save_file(tensors, os.path.join(local, name))
            manifest["shards"].append(name)
        with open(os.path.join(local, RECORDS), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        tokenizer.save_pretrained(os.path.join(local, TOKENIZER_DIR))
        with open(os.path.join(local, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        storage.upload_dir(local, uri)
    return manifest


@dataclasses.dataclass
class Prepared:
    packed: Packed
    records: list[dict]
    manifest: dict
    tokenizer_dir: str  # a local copy


def load(uri: str, *, local_dir: str, seq_len: int | None = None) -> Prepared:
    """Read a prepared directory (packed for `seq_len`, when given); `local_dir` receives the
    downloaded copy."""
    from safetensors.torch import load_file

    local = storage.download_dir(uri, local_dir) if storage.is_remote(uri) else uri
    with open(os.path.join(local, MANIFEST)) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{uri}: not a prepared dataset ({MANIFEST} format is not {FORMAT})")
    if seq_len is not None and manifest["seq_len"] != seq_len:
        raise ValueError(
            f"{uri}: packed for seq_len={manifest['seq_len']}, but data.seq_len={seq_len}"
        )
    shards = [load_file(os.path.join(local, name)) for name in manifest["shards"]]
    tensors = {k: torch.cat([s[k] for s in shards]).long() for k in _TENSORS}
    with open(os.path.join(local, RECORDS), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    packed = Packed(**tensors, stats=PackStats(**manifest["pack"]))
    return Prepared(packed, records, manifest, os.path.join(local, TOKENIZER_DIR))
