"""Everything the LLM trainer reads: records, tokenizer, tokenized and packed train/eval splits;
and the pipeline's prepare step, which does the same work once, ahead of training.

    data = load_data(cfg)   # cfg: LLMConfig; raw records or prepared splits
    data.train.input_ids.shape  # [rows, seq_len]
    stats = prepare(cfg, train_dir="out/train", eval_dir="out/eval")
    python -m trainers.llm --data out/train --eval-data out/eval   # trains on the shards

Raw records are split and deduplicated by `trainers.common.records.split_records`, whether the
trainer or the prepare step reads them, so the same data trains the same way however it starts.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

from trainers.common import prepared as layout
from trainers.common.config import ConfigError
from trainers.common.packing import Packed, pack
from trainers.common.records import Split, fingerprint, load_split
from trainers.llm import prepared
from trainers.llm.config import LLMConfig
from trainers.llm.synthetic import arithmetic_records
from trainers.lm.chat import check_record, tokenize_record
from trainers.lm.model import tokenizer_from
from trainers.lm.tokenizer import corpus_texts, load_tokenizer, train_tokenizer


@dataclass
class LLMData:
    tokenizer: object
    train: Packed
    eval: Packed
    train_records: list[dict]
    eval_records: list[dict]  # for generation-based metrics
    fingerprint: str
    skipped_records: int
    duplicates_removed: int


def load_records(cfg: LLMConfig) -> tuple[Split, int]:
    """(train and eval records, skipped count) from the configured sources."""
    data = cfg.data
    return load_split(
        data.train,
        data.eval,
        validate=check_record,
        on_bad=data.on_bad_record,
        eval_fraction=data.eval_fraction,
        synthetic=lambda: arithmetic_records(data.synthetic_examples, seed=cfg.train.seed),
    )


def make_tokenizer(cfg: LLMConfig, records: list[dict]):
    if cfg.model.tokenizer == "trained":
        return train_tokenizer(corpus_texts(records), vocab_size=cfg.model.vocab_size)
    field = "model.tokenizer" if cfg.model.tokenizer else "model.source"
    return tokenizer_from(cfg.model.tokenizer or cfg.model.source, field=field)


def pack_records(tokenizer, records: list[dict], cfg: LLMConfig) -> Packed:
    examples = [tokenize_record(tokenizer, r, mask_prompt=cfg.data.mask_prompt) for r in records]
    return pack(
        examples,
        seq_len=cfg.data.seq_len,
        pad_id=tokenizer.pad_token_id,
        overlong=cfg.data.overlong,
    )


def load_data(cfg: LLMConfig) -> LLMData:
    if layout.is_prepared(cfg.data.train):
        return load_prepared(cfg)
    split, skipped = load_records(cfg)
    train, evals = split.train_records, split.eval_records
    tokenizer = make_tokenizer(cfg, train)
    return LLMData(
        tokenizer=tokenizer,
        train=pack_records(tokenizer, train, cfg),
        eval=pack_records(tokenizer, evals, cfg),
        train_records=train,
        eval_records=evals,
        fingerprint=fingerprint(train),
        skipped_records=skipped,
        duplicates_removed=split.duplicates_removed,
    )


def load_prepared(cfg: LLMConfig) -> LLMData:
    """Packed shards written by `prepare` (the pipeline's prepare_data step)."""
    if not layout.is_prepared(cfg.data.eval):
        raise ConfigError(
            f"data.eval={cfg.data.eval!r} is invalid: with a prepared data.train, data.eval "
            "must be the prepared eval split too"
        )
    with tempfile.TemporaryDirectory(prefix="liftoff-data-") as local:
        train = prepared.load(cfg.data.train, seq_len=cfg.data.seq_len, local_dir=f"{local}/t")
        evals = prepared.load(cfg.data.eval, seq_len=cfg.data.seq_len, local_dir=f"{local}/e")
        tokenizer = load_tokenizer(train.tokenizer_dir)
    return LLMData(
        tokenizer=tokenizer,
        train=train.packed,
        eval=evals.packed,
        train_records=train.records,
        eval_records=evals.records,
        fingerprint=train.manifest["fingerprint"],
        skipped_records=train.manifest["skipped_records"],
        duplicates_removed=train.manifest["duplicates_removed"],
    )


def prepare(cfg: LLMConfig, *, train_dir: str, eval_dir: str) -> dict:
    """Write the train and eval splits of `cfg.data` as prepared directories; return both
    manifests (`{"train": manifest, "eval": manifest}`)."""
    split, skipped = load_records(cfg)
    tokenizer = make_tokenizer(cfg, split.train_records)
    counts = {"skipped_records": skipped, "duplicates_removed": split.duplicates_removed}
    stats = {}
    for name, records, uri in (
        ("train", split.train_records, train_dir),
        ("eval", split.eval_records, eval_dir),
    ):
        stats[name] = prepared.write(
            uri,
            packed=pack_records(tokenizer, records, cfg),
            records=records,
            tokenizer=tokenizer,
            seq_len=cfg.data.seq_len,
            counts=counts,
        )
    return stats
