"""Everything the LLM trainer reads: records, tokenizer, tokenized and packed train/eval splits.

data = load_data(cfg)   # cfg: LLMConfig
data.train.input_ids.shape  # [rows, seq_len]
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

from trainers.common.packing import Packed, pack
from trainers.common.records import fingerprint, is_eval, read_records
from trainers.llm import prepared
from trainers.llm.config import LLMConfig
from trainers.llm.synthetic import arithmetic_records
from trainers.lm.chat import check_record, tokenize_record
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


def load_records(cfg: LLMConfig) -> tuple[list[dict], list[dict], int]:
    """(train records, eval records, skipped count) from the configured sources."""
    data = cfg.data
    if data.train:
        records, skipped = read_records(
            data.train, validate=check_record, on_bad=data.on_bad_record
        )
    else:
        records, skipped = arithmetic_records(data.synthetic_examples, seed=cfg.train.seed), 0
    if data.eval:
        evals, more = read_records(data.eval, validate=check_record, on_bad=data.on_bad_record)
        return records, evals, skipped + more
    train = [r for r in records if not is_eval(r, data.eval_fraction)]
    evals = [r for r in records if is_eval(r, data.eval_fraction)]
    return train, evals, skipped


def make_tokenizer(cfg: LLMConfig, records: list[dict]):
    if cfg.model.tokenizer == "trained":
        return train_tokenizer(corpus_texts(records), vocab_size=cfg.model.vocab_size)
    from trainers.lm.model import local_source

    return load_tokenizer(local_source(cfg.model.tokenizer or cfg.model.source))


def pack_records(tokenizer, records: list[dict], cfg: LLMConfig) -> Packed:
    examples = [tokenize_record(tokenizer, r, mask_prompt=cfg.data.mask_prompt) for r in records]
    return pack(
        examples,
        seq_len=cfg.data.seq_len,
        pad_id=tokenizer.pad_token_id,
        overlong=cfg.data.overlong,
    )


def load_data(cfg: LLMConfig) -> LLMData:
    if prepared.is_prepared(cfg.data.train):
        return load_prepared(cfg)
    train, evals, skipped = load_records(cfg)
    if not evals:
        raise ValueError(
            "data.eval_fraction gives an empty eval split; raise it or set --eval-data"
        )
    tokenizer = make_tokenizer(cfg, train)
    return LLMData(
        tokenizer=tokenizer,
        train=pack_records(tokenizer, train, cfg),
        eval=pack_records(tokenizer, evals, cfg),
        train_records=train,
        eval_records=evals,
        fingerprint=fingerprint(train),
        skipped_records=skipped,
    )


def load_prepared(cfg: LLMConfig) -> LLMData:
    """Packed shards written by `prepared.prepare` (the pipeline's prepare_data step)."""
    if not prepared.is_prepared(cfg.data.eval):
        raise ValueError(
            f"data.eval={cfg.data.eval!r}: with a prepared data.train, data.eval must be the "
            "prepared eval split too"
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
    )
