"""liftoff's LLM trainer against HF Trainer, same model, data and steps, on CPU.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/llm_trainer.py [--steps 30] [--seq-len 512]
        [--threads 2] [--warmup 2] [--json results.json]

Prints one row per side (steps measured, examples per optimizer step, effective tokens, seconds,
effective tokens/s, share of computed positions that are padding, mean training loss) and the
ratios liftoff / (a) and liftoff / (b), where

    liftoff  trainers.llm.train.train(cfg): packed rows of seq_len, position_ids restart per example
    (a)      transformers.Trainer + DataCollatorForSeq2Seq (pad to the longest in the batch)
    (b)      transformers.Trainer + DataCollatorWithFlattening (one row per batch, position_ids)

What is shared: one JSONL of prompt/response records with log-normal lengths (written to a temp
dir from a seed, nothing downloaded); liftoff's own tokenizer and tokenization (`load_data`, so
all sides see identical token streams, truncated to seq_len the same way); the same tiny Llama
with the same initial weights (`build_model` after the same seed), fp32, SDPA; AdamW with the same
lr, betas, eps, weight decay, grad clipping and warmup + cosine-to-min-lr; the same thread count;
the same number of optimizer steps; and on average the same examples per optimizer step (HF batch
sizes are set from liftoff's pack stats: examples per packed row x rows per step).

What is timed: the training loop only. liftoff's train() also trains the tokenizer, packs, builds
the model, evaluates and saves, so each side is timed between the end of optimizer step `--warmup`
and the end of the last step, from a per-step callback (train(callbacks=...) for liftoff, a
TrainerCallback for HF). That window excludes start-up and the first steps' one-time costs on
every side, and includes each side's own batching (row indexing for liftoff, collation for HF).
Effective tokens are the non-padding tokens of the batches consumed in that window: for liftoff
replayed from its row order (checked against the tokens_seen it reports), for HF counted on the
inputs each training_step receives. The full wall time of each training call is printed too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Run as a file, the repository root is not on sys.path; the trainers package lives there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from trainers.common.batches import global_batch_rows  # noqa: E402
from trainers.common.config import apply_overrides  # noqa: E402
from trainers.common.packing import IGNORE, Packed, fit_length  # noqa: E402
from trainers.llm.chat import tokenize_record  # noqa: E402
from trainers.llm.config import LLMConfig  # noqa: E402
from trainers.llm.data import load_data, load_records  # noqa: E402
from trainers.llm.presets import debug  # noqa: E402

NUM_RECORDS = 4000
NUM_WORDS = 600  # a small vocabulary: the trained BPE learns most words whole or in two pieces
ROWS_PER_STEP = 8  # liftoff's global batch, in packed rows


@dataclass
class Result:
    side: str
    steps: int  # optimizer steps inside the timed window
    examples_per_step: float
    tokens: int  # non-padding tokens consumed in the timed window
    positions: int  # token positions computed in the timed window, padding included
    seconds: float
    total_seconds: float  # the whole training call, start-up and (liftoff) data/eval/save included
    mean_loss: float  # over every step, token-weighted: a guard that all sides learn the same task

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def padding(self) -> float:
        return 1 - self.tokens / self.positions


class StepClock:
    """Timestamps taken after each optimizer step; the window skips the warm-up steps."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.times: dict[int, float] = {}

    def __call__(self, step: int) -> None:
        self.times[step] = time.perf_counter()

    def window(self, last_step: int) -> float:
        return self.times[last_step] - self.times[self.warmup]


# --- data ----------------------------------------------------------------------------------


def make_records(num_records: int, *, seed: int) -> list[dict]:
    """Prompt/response records whose word counts are log-normal with a long tail."""
    rng = random.Random(seed)
    vocab = _make_vocab(rng)
    # Zipf-like word frequencies, as in real text.
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    records = []
    for _ in range(num_records):
        num_prompt = _lognormal_count(rng, median=25, sigma=0.8, cap=300)
        num_response = _lognormal_count(rng, median=60, sigma=0.9, cap=450)
        records.append({"prompt": " ".join(rng.choices(vocab, weights, k=num_prompt)),
                        "response": " ".join(rng.choices(vocab, weights, k=num_response))})
    return records


def _make_vocab(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(NUM_WORDS)]


def _lognormal_count(rng: random.Random, *, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, round(rng.lognormvariate(math.log(median), sigma))))


def write_jsonl(records: list[dict], path: Path) -> None:
    with path.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


# --- liftoff -------------------------------------------------------------------------------


def liftoff_config(args: argparse.Namespace, *, workdir: Path, data_path: Path) -> LLMConfig:
    overrides = {
        "data.train": data_path, "data.seq_len": args.seq_len, "data.eval_fraction": 0.02,
        "model.tokenizer": "trained", "model.vocab_size": 1024, "model.hidden_size": 256,
        "model.num_layers": 4, "model.num_heads": 4, "model.num_kv_heads": 4,
        "model.intermediate_size": 688, "model.max_position_embeddings": args.seq_len,
        "model.attn_implementation": "sdpa", "train.precision": "fp32",
        "train.max_steps": args.steps, "train.global_batch_size": ROWS_PER_STEP,
        "train.micro_batch_size": ROWS_PER_STEP, "train.threads": args.threads,
        # One log line at the last step: its loss is the token-weighted mean over all steps.
        "train.log_every": args.steps, "train.eval_every": 0, "train.eval_batches": 1,
        "train.exact_match_examples": 0, "optim.warmup_steps": max(1, args.steps // 10),
        "checkpoint.every_steps": 0, "checkpoint.dir": workdir / "checkpoints",
        "output_dir": workdir / "model", "wandb.enabled": False,
    }
    return apply_overrides(debug(), [f"{k}={v}" for k, v in overrides.items()])


def run_liftoff(cfg: LLMConfig, packed: Packed, *, warmup: int) -> Result:
    from trainers.llm.train import train

    clock = StepClock(warmup)
    started = time.perf_counter()
    metadata = train(cfg, callbacks=[clock])
    total = time.perf_counter() - started
    steps = cfg.train.max_steps
    tokens, examples = _replay_rows(cfg, packed, steps=range(steps))
    # Our replay of liftoff's row order must match what it consumed, or the counts mean nothing.
    assert tokens == metadata["tokens_seen"], (tokens, metadata["tokens_seen"])
    tokens, examples = _replay_rows(cfg, packed, steps=range(warmup, steps))
    return Result(side="liftoff", steps=steps - warmup, examples_per_step=examples / (steps - warmup),
                  tokens=tokens, positions=(steps - warmup) * ROWS_PER_STEP * cfg.data.seq_len,
                  seconds=clock.window(steps), total_seconds=total,
                  mean_loss=metadata["final"]["train/loss"])


def _replay_rows(cfg: LLMConfig, packed: Packed, *, steps: range) -> tuple[int, int]:
    """(non-padding tokens, examples) in the rows liftoff reads at `steps`."""
    tokens = examples = 0
    for step in steps:
        rows = global_batch_rows(step, num_rows=len(packed.input_ids),
                                 global_batch=cfg.train.global_batch_size, seed=cfg.train.seed)
        for row in rows:
            real = int(packed.row_tokens[row])
            tokens += real
            examples += int((packed.position_ids[row, :real] == 0).sum())
    return tokens, examples


# --- HF Trainer ----------------------------------------------------------------------------


def hf_features(cfg: LLMConfig, tokenizer) -> list[dict]:
    """liftoff's train examples, truncated as liftoff does, as input_ids/labels (prompt -100)."""
    train_records, _, _ = load_records(cfg)
    examples = [tokenize_record(tokenizer, r, mask_prompt=cfg.data.mask_prompt) for r in train_records]
    kept, _ = fit_length(examples, seq_len=cfg.data.seq_len, overlong=cfg.data.overlong)
    return [{"input_ids": ex.token_ids,
             "labels": [t if keep else IGNORE for t, keep in zip(ex.token_ids, ex.trainable, strict=True)]}
            for ex in kept]


def run_hf(side: str, cfg: LLMConfig, *, tokenizer, features: list[dict], collator, batch_size: int,
           warmup: int, threads: int, workdir: Path) -> Result:
    from transformers import Trainer, TrainerCallback

    from trainers.llm.model import build_model

    class Clock(TrainerCallback):
        def __init__(self):
            self.clock = StepClock(warmup)

        def on_step_end(self, args, state, control, **kwargs):
            self.clock(state.global_step)

    class CountingTrainer(Trainer):
        """Counts what each optimizer step really consumed (gradient accumulation is 1)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.counts: list[tuple[int, int, int, int]] = []  # tokens, positions, examples, targets
            self.losses: list[float] = []

        def training_step(self, model, inputs, num_items_in_batch=None):
            self.counts.append(_batch_counts(inputs))
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.losses.append(float(loss))
            return loss

    torch.set_num_threads(threads)
    torch.manual_seed(cfg.train.seed)  # the initial weights liftoff's model gets
    model = build_model(cfg.model, vocab_size=len(tokenizer))
    callback = Clock()
    trainer = CountingTrainer(model=model, args=_training_args(cfg, batch_size, workdir / side),
                              data_collator=collator, train_dataset=features, callbacks=[callback])
    started = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - started
    return _hf_result(side, trainer, callback.clock, total=total, warmup=warmup)


def _training_args(cfg: LLMConfig, batch_size: int, output_dir: Path):
    from transformers import TrainingArguments

    opt = cfg.optim
    return TrainingArguments(
        output_dir=str(output_dir), use_cpu=True, report_to=[], max_steps=cfg.train.max_steps,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=1,
        save_strategy="no", logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False, remove_unused_columns=False,
        # liftoff's schedule: linear warmup, then cosine down to lr * min_lr_ratio.
        learning_rate=opt.lr, lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": opt.min_lr_ratio}, warmup_steps=opt.warmup_steps,
        # liftoff uses torch's default (foreach) AdamW on CPU; HF's default here would be fused.
        optim="adamw_torch", weight_decay=opt.weight_decay, adam_beta1=opt.beta1,
        adam_beta2=opt.beta2, adam_epsilon=opt.eps, max_grad_norm=opt.grad_clip,
        seed=cfg.train.seed, data_seed=cfg.train.seed)


def _batch_counts(inputs: dict) -> tuple[int, int, int, int]:
    """(non-padding tokens, positions, examples, target tokens) of one collated batch."""
    ids, labels = inputs["input_ids"], inputs["labels"]
    targets = int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one
    if "position_ids" in inputs:  # flattened: no padding, an example starts at every position 0
        return ids.numel(), ids.numel(), int((inputs["position_ids"] == 0).sum()), targets
    return int(inputs["attention_mask"].sum()), ids.numel(), ids.shape[0], targets


def _hf_result(side: str, trainer, clock: StepClock, *, total: float, warmup: int) -> Result:
    counts, steps = trainer.counts, len(trainer.counts)
    window = counts[warmup:]
    targets = [c[3] for c in counts]
    mean_loss = sum(lo * t for lo, t in zip(trainer.losses, targets, strict=True)) / sum(targets)
    return Result(side=side, steps=steps - warmup,
                  examples_per_step=sum(c[2] for c in window) / len(window),
                  tokens=sum(c[0] for c in window), positions=sum(c[1] for c in window),
                  seconds=clock.window(steps), total_seconds=total, mean_loss=mean_loss)


# --- report --------------------------------------------------------------------------------


def length_summary(features: list[dict]) -> dict:
    lengths = sorted(len(f["input_ids"]) for f in features)
    pick = lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))]  # noqa: E731
    return {"examples": len(lengths), "mean": round(sum(lengths) / len(lengths), 1),
            "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": lengths[-1]}


def print_report(results: list[Result], *, lengths: dict, plan: dict) -> dict:
    print(f"\nexample lengths (tokens): {lengths}")
    print(f"examples per step: liftoff {plan['examples_per_row']:.2f} per packed row x "
          f"{ROWS_PER_STEP} rows = {plan['liftoff_examples_per_step']:.2f} expected; "
          f"HF per_device_train_batch_size {plan['hf_batch_size']}\n")
    header = (f"{'side':<22}{'steps':>6}{'ex/step':>9}{'eff tokens':>12}{'seconds':>9}"
              f"{'eff tok/s':>11}{'padding':>9}{'loss':>8}{'total s':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.side:<22}{r.steps:>6}{r.examples_per_step:>9.2f}{r.tokens:>12,}"
              f"{r.seconds:>9.1f}{r.tokens_per_s:>11,.0f}{r.padding:>9.1%}{r.mean_loss:>8.3f}"
              f"{r.total_seconds:>9.1f}")
    liftoff, padded, flat = results
    ratios = {"liftoff/a": liftoff.tokens_per_s / padded.tokens_per_s,
              "liftoff/b": liftoff.tokens_per_s / flat.tokens_per_s}
    print(f"\neffective tokens/s  liftoff / (a) = {ratios['liftoff/a']:.2f}x (target >= 2)   "
          f"liftoff / (b) = {ratios['liftoff/b']:.2f}x (target >= 1)")
    return ratios


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per side (default 30)")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    p.add_argument("--seq-len", type=int, default=512, help="packed row length and truncation")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads for every side")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not 0 < args.warmup < args.steps:
        p.error(f"--warmup={args.warmup} must be in [1, --steps)")
    return args


def main(argv: list[str] | None = None) -> int:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="liftoff-bench-") as tmp:
        workdir = Path(tmp)
        write_jsonl(make_records(NUM_RECORDS, seed=0), workdir / "train.jsonl")
        cfg = liftoff_config(args, workdir=workdir, data_path=workdir / "train.jsonl")
        data = load_data(cfg)  # the same tokenizer and packing liftoff's train() builds
        features = hf_features(cfg, data.tokenizer)
        stats = data.train.stats
        examples_per_row = (stats.examples - stats.dropped) / stats.rows
        plan = {"examples_per_row": examples_per_row,
                "liftoff_examples_per_step": examples_per_row * ROWS_PER_STEP,
                "hf_batch_size": max(1, round(examples_per_row * ROWS_PER_STEP))}
        common = {"tokenizer": data.tokenizer, "features": features,
                  "batch_size": plan["hf_batch_size"], "warmup": args.warmup,
                  "threads": args.threads, "workdir": workdir}
        results = [
            run_liftoff(cfg, data.train, warmup=args.warmup),
            run_hf("(a) HF Trainer padded", cfg, **common,
                   collator=DataCollatorForSeq2Seq(data.tokenizer, padding=True,
                                                   label_pad_token_id=IGNORE)),
            run_hf("(b) HF Trainer flat", cfg, **common, collator=DataCollatorWithFlattening()),
        ]
    lengths = length_summary(features)
    ratios = print_report(results, lengths=lengths, plan=plan)
    if args.json:
        report = {"args": vars(args), "lengths": lengths, "plan": plan, "ratios": ratios,
                  "results": [asdict(r) | {"tokens_per_s": r.tokens_per_s, "padding": r.padding}
                              for r in results]}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
