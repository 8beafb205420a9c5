"""liftoff's LLM trainer against HF Trainer: same model, data, optimizer and steps, on CPU.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/llm_trainer.py [--steps 30] [--seq-len 512]
        [--threads 1] [--warmup 2] [--json results.json]

Prints the example lengths, how examples per step were matched, then one row per side (steps
timed, examples per optimizer step, effective tokens, seconds, effective tokens/s, share of the
computed positions that is padding, the CPU share the side got, its mean training loss, and the
wall time of the whole training call) and the ratios liftoff / (a) and liftoff / (b), where

    liftoff  trainers.llm.train.train(cfg): packed rows of seq_len, position_ids restart per example
    (a)      transformers.Trainer + DataCollatorForSeq2Seq (pad to the longest in the batch)
    (b)      transformers.Trainer + DataCollatorWithFlattening (one row per batch, position_ids)

Shared by all sides: one JSONL of prompt/response records with log-normal lengths (written to a
temp dir from a seed, nothing downloaded); liftoff's own tokenizer and tokenization (`load_data`),
so every side sees identical token streams truncated to seq_len the same way; the same tiny Llama
with the same initial weights (`build_model` after the same seed), fp32, SDPA; liftoff's AdamW and
warmup + cosine schedule (handed to HF Trainer as its optimizer and scheduler) and gradient
clipping; the thread count; the number of optimizer steps; and, on average, the examples per
optimizer step (HF batch size = liftoff's examples per packed row x packed rows per step).

Timed: the training loop only. liftoff's train() also trains the tokenizer, packs, builds the
model, evaluates and saves, so every side is timed from the end of optimizer step `--warmup` to
the end of the last step by a per-step callback (train(callbacks=...) for liftoff, a
TrainerCallback for HF). That leaves out start-up and first-step costs on every side and keeps
each side's own batching (row indexing for liftoff, collation for HF). Effective tokens are the
non-padding tokens of the batches consumed in that window: for liftoff replayed from its row order
(checked against the tokens_seen it reports), for HF counted on the inputs of each training_step.

One thread by default: on a small shared machine, two OpenMP threads stall at every barrier
whenever another process takes a core, and the stall costs small per-step ops (liftoff's) more
than large ones, so the ratios would measure the neighbours. The `cpu` column (CPU time over wall
time x threads) shows whether a side ran undisturbed; the report warns when one did not.
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
from transformers import (  # noqa: E402
    DataCollatorForSeq2Seq,
    DataCollatorWithFlattening,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from trainers.common import training  # noqa: E402
from trainers.common.batches import global_batch_rows  # noqa: E402
from trainers.common.config import apply_overrides  # noqa: E402
from trainers.common.packing import IGNORE, Packed, fit_length  # noqa: E402
from trainers.llm.config import LLMConfig  # noqa: E402
from trainers.llm.data import load_data, load_records  # noqa: E402
from trainers.llm.presets import debug  # noqa: E402
from trainers.llm.train import train  # noqa: E402
from trainers.lm.chat import tokenize_record  # noqa: E402
from trainers.lm.model import build_model  # noqa: E402

NUM_RECORDS = 4000
NUM_WORDS = 600  # a small vocabulary: the trained BPE learns most words whole or in two pieces
ROWS_PER_STEP = 8  # liftoff's global batch, in packed rows
MIN_CPU_SHARE = 0.9  # below this a side was slowed by other processes on the machine


@dataclass
class Result:
    side: str
    steps: int  # optimizer steps inside the timed window
    examples_per_step: float
    tokens: int  # non-padding tokens consumed in the timed window
    positions: int  # token positions computed in the timed window, padding included
    seconds: float
    cpu_seconds: float  # CPU time of all this process's threads in the timed window
    total_seconds: float  # the whole training call: start-up and (liftoff) data/eval/save too
    mean_loss: float  # token-weighted over all steps: a guard that every side learns the same

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def padding(self) -> float:
        return 1 - self.tokens / self.positions

    def cpu_share(self, threads: int) -> float:
        return self.cpu_seconds / (self.seconds * threads)


class StepClock:
    """Wall and CPU time after each optimizer step; the window starts after the warm-up steps."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.times: dict[int, tuple[float, float]] = {}

    def __call__(self, step: int) -> None:
        self.times[step] = (time.perf_counter(), time.process_time())

    def window(self, last_step: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds) from the end of the warm-up to the end of `last_step`."""
        end, start = self.times[last_step], self.times[self.warmup]
        return end[0] - start[0], end[1] - start[1]


# --- data ----------------------------------------------------------------------------------


def make_records(num_records: int, *, seed: int) -> list[dict]:
    """Prompt/response records whose word counts are log-normal with a long tail."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(NUM_WORDS)]
    weights = [1 / (rank + 1) for rank in range(NUM_WORDS)]  # Zipf-like, as in real text

    def text(median: float, sigma: float, cap: int) -> str:
        count = max(1, min(cap, round(rng.lognormvariate(math.log(median), sigma))))
        return " ".join(rng.choices(vocab, weights, k=count))

    return [
        {"prompt": text(25, 0.8, cap=300), "response": text(60, 0.9, cap=450)}
        for _ in range(num_records)
    ]


def write_jsonl(records: list[dict], path: Path) -> None:
    with path.open("w") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def hf_features(cfg: LLMConfig, tokenizer) -> list[dict]:
    """liftoff's train examples, truncated as liftoff does, as input_ids/labels (prompt -100)."""
    split, _ = load_records(cfg)
    examples = [
        tokenize_record(tokenizer, r, mask_prompt=cfg.data.mask_prompt) for r in split.train_records
    ]
    kept, _ = fit_length(examples, seq_len=cfg.data.seq_len, overlong=cfg.data.overlong)
    return [
        {
            "input_ids": ex.token_ids,
            "labels": [
                t if keep else IGNORE for t, keep in zip(ex.token_ids, ex.trainable, strict=True)
            ],
        }
        for ex in kept
    ]


# --- liftoff -------------------------------------------------------------------------------


def liftoff_config(args: argparse.Namespace, *, workdir: Path) -> LLMConfig:
    overrides = {
        "data.train": workdir / "train.jsonl",
        "data.seq_len": args.seq_len,
        "data.eval_fraction": 0.02,
        "model.tokenizer": "trained",
        "model.vocab_size": 1024,
        "model.hidden_size": 256,
        "model.num_layers": 4,
        "model.num_heads": 4,
        "model.num_kv_heads": 4,
        "model.intermediate_size": 688,
        "model.max_position_embeddings": args.seq_len,
        "model.attn_implementation": "sdpa",
        "train.precision": "fp32",
        "train.max_steps": args.steps,
        "train.global_batch_size": ROWS_PER_STEP,
        "train.micro_batch_size": ROWS_PER_STEP,
        "train.threads": args.threads,
        # One log line, at the last step: its loss is the token-weighted mean over all steps.
        "train.log_every": args.steps,
        "train.eval_every": 0,
        "train.eval_batches": 1,
        "train.exact_match_examples": 0,
        "optim.warmup_steps": max(1, args.steps // 10),
        "checkpoint.every_steps": 0,
        "checkpoint.dir": workdir / "checkpoints",
        "output_dir": workdir / "model",
        "wandb.enabled": False,
    }
    return apply_overrides(debug(), [f"{key}={value}" for key, value in overrides.items()])


def run_liftoff(cfg: LLMConfig, packed: Packed, *, warmup: int) -> Result:
    clock, steps = StepClock(warmup), cfg.train.max_steps
    started = time.perf_counter()
    metadata = train(cfg, callbacks=[clock])
    total = time.perf_counter() - started
    # The replay of liftoff's row order must match what it consumed, or the counts mean nothing.
    all_tokens, _ = _replay_rows(cfg, packed, steps=range(steps))
    assert all_tokens == metadata["tokens_seen"], (all_tokens, metadata["tokens_seen"])
    tokens, examples = _replay_rows(cfg, packed, steps=range(warmup, steps))
    seconds, cpu_seconds = clock.window(steps)
    return Result(
        side="liftoff",
        steps=steps - warmup,
        examples_per_step=examples / (steps - warmup),
        tokens=tokens,
        positions=(steps - warmup) * ROWS_PER_STEP * cfg.data.seq_len,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        total_seconds=total,
        mean_loss=metadata["final"]["train/loss"],
    )


def _replay_rows(cfg: LLMConfig, packed: Packed, *, steps: range) -> tuple[int, int]:
    """(non-padding tokens, examples) in the rows liftoff reads at `steps`."""
    tokens = examples = 0
    for step in steps:
        rows = global_batch_rows(
            step,
            num_rows=len(packed.input_ids),
            global_batch=cfg.train.global_batch_size,
            seed=cfg.train.seed,
        )
        for row in rows:
            real = int(packed.row_tokens[row])
            tokens += real
            examples += int((packed.position_ids[row, :real] == 0).sum())
    return tokens, examples


# --- HF Trainer ----------------------------------------------------------------------------


class ClockCallback(TrainerCallback):
    def __init__(self, clock: StepClock):
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):
        self.clock(state.global_step)


class CountingTrainer(Trainer):
    """Records what each optimizer step consumed (gradient accumulation is 1) and its loss."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts: list[tuple[int, int, int, int]] = []  # see _batch_counts
        self.losses: list[float] = []

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.counts.append(_batch_counts(inputs))
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.losses.append(float(loss))
        return loss


def _batch_counts(inputs: dict) -> tuple[int, int, int, int]:
    """(non-padding tokens, positions, examples, target tokens) of one collated batch."""
    ids, labels = inputs["input_ids"], inputs["labels"]
    targets = int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one
    if "position_ids" in inputs:  # flattened: no padding; every example starts at position 0
        return ids.numel(), ids.numel(), int((inputs["position_ids"] == 0).sum()), targets
    return int(inputs["attention_mask"].sum()), ids.numel(), ids.shape[0], targets


def run_hf(
    side: str,
    cfg: LLMConfig,
    *,
    collator,
    features: list[dict],
    vocab_size: int,
    batch_size: int,
    warmup: int,
    workdir: Path,
) -> Result:
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)  # the initial weights liftoff's model gets
    model = build_model(cfg.model, vocab_size=vocab_size)
    clock = StepClock(warmup)
    trainer = CountingTrainer(
        model=model,
        args=_training_args(cfg, batch_size=batch_size, output_dir=workdir / side),
        data_collator=collator,
        train_dataset=features,
        callbacks=[ClockCallback(clock)],
        # liftoff's own AdamW (decay on matrices only) and schedule, so updates match exactly.
        optimizers=training.build_optimization(model, cfg),
    )
    started = time.perf_counter()
    trainer.train()
    return _hf_result(side, trainer, clock, total=time.perf_counter() - started, warmup=warmup)


def _training_args(cfg: LLMConfig, *, batch_size: int, output_dir: Path) -> TrainingArguments:
    # The optimizer and scheduler are passed to Trainer; the lr fields here only mirror them.
    return TrainingArguments(
        output_dir=str(output_dir),
        use_cpu=True,
        report_to=[],
        max_steps=cfg.train.max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1,
        learning_rate=cfg.optim.lr,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.optim.warmup_steps,
        max_grad_norm=cfg.optim.grad_clip,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        remove_unused_columns=False,
        seed=cfg.train.seed,
        data_seed=cfg.train.seed,
    )


def _hf_result(
    side: str, trainer: CountingTrainer, clock: StepClock, *, total: float, warmup: int
) -> Result:
    counts, steps = trainer.counts, len(trainer.counts)
    window = counts[warmup:]
    targets = [c[3] for c in counts]
    loss_sum = sum(loss * t for loss, t in zip(trainer.losses, targets, strict=True))
    seconds, cpu_seconds = clock.window(steps)
    return Result(
        side=side,
        steps=steps - warmup,
        examples_per_step=sum(c[2] for c in window) / len(window),
        tokens=sum(c[0] for c in window),
        positions=sum(c[1] for c in window),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        total_seconds=total,
        mean_loss=loss_sum / sum(targets),
    )


# --- report --------------------------------------------------------------------------------


def length_summary(features: list[dict]) -> dict:
    lengths = sorted(len(f["input_ids"]) for f in features)
    quantiles = {
        f"p{q}": lengths[min(len(lengths) - 1, len(lengths) * q // 100)] for q in (50, 90, 99)
    }
    return (
        {"examples": len(lengths), "mean": round(sum(lengths) / len(lengths), 1)}
        | quantiles
        | {"max": lengths[-1]}
    )


def print_report(results: list[Result], *, threads: int, lengths: dict, plan: dict) -> dict:
    print(f"\nexample lengths (tokens): {lengths}")
    print(
        f"examples per step: liftoff {plan['examples_per_row']:.2f} per packed row x "
        f"{ROWS_PER_STEP} rows = {plan['liftoff_examples_per_step']:.2f} expected; "
        f"HF per_device_train_batch_size {plan['hf_batch_size']}; {threads} thread(s)\n"
    )
    header = (
        f"{'side':<22}{'steps':>6}{'ex/step':>9}{'eff tokens':>12}{'seconds':>9}"
        f"{'eff tok/s':>11}{'padding':>9}{'cpu':>6}{'loss':>8}{'total s':>9}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        print(
            f"{r.side:<22}{r.steps:>6}{r.examples_per_step:>9.2f}{r.tokens:>12,}{r.seconds:>9.1f}"
            f"{r.tokens_per_s:>11,.0f}{r.padding:>9.1%}{r.cpu_share(threads):>6.0%}"
            f"{r.mean_loss:>8.3f}{r.total_seconds:>9.1f}"
        )
    liftoff, padded, flat = results
    ratios = {
        "liftoff/a": liftoff.tokens_per_s / padded.tokens_per_s,
        "liftoff/b": liftoff.tokens_per_s / flat.tokens_per_s,
    }
    print(
        f"\neffective tokens/s  liftoff / (a) = {ratios['liftoff/a']:.2f}x (target >= 2)   "
        f"liftoff / (b) = {ratios['liftoff/b']:.2f}x (target >= 1)"
    )
    disturbed = [r.side for r in results if r.cpu_share(threads) < MIN_CPU_SHARE]
    if disturbed:
        print(f"warning: other processes slowed {', '.join(disturbed)}; the ratios are skewed")
    return ratios


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per side (default 30)")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    p.add_argument("--seq-len", type=int, default=512, help="packed row length and truncation")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for every side")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not 0 < args.warmup < args.steps:
        p.error(f"--warmup={args.warmup} must be in [1, --steps)")
    return args


def match_examples_per_step(packed: Packed) -> dict:
    """HF batch size giving the examples per optimizer step that liftoff's packed rows hold."""
    stats = packed.stats
    per_row = (stats.examples - stats.dropped) / stats.rows
    per_step = per_row * ROWS_PER_STEP
    return {
        "examples_per_row": per_row,
        "liftoff_examples_per_step": per_step,
        "hf_batch_size": max(1, round(per_step)),
    }


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[Result], dict, dict]:
    write_jsonl(make_records(NUM_RECORDS, seed=0), workdir / "train.jsonl")
    cfg = liftoff_config(args, workdir=workdir)
    torch.set_num_threads(args.threads)
    data = load_data(cfg)  # the same tokenizer and packed rows liftoff's train() builds
    features = hf_features(cfg, data.tokenizer)
    plan = match_examples_per_step(data.train)
    hf = {
        "features": features,
        "vocab_size": len(data.tokenizer),
        "batch_size": plan["hf_batch_size"],
        "warmup": args.warmup,
        "workdir": workdir,
    }
    padding = DataCollatorForSeq2Seq(data.tokenizer, padding=True, label_pad_token_id=IGNORE)
    results = [
        run_liftoff(cfg, data.train, warmup=args.warmup),
        run_hf("(a) HF Trainer padded", cfg, collator=padding, **hf),
        run_hf("(b) HF Trainer flat", cfg, collator=DataCollatorWithFlattening(), **hf),
    ]
    return results, length_summary(features), plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="liftoff-bench-") as tmp:
        results, lengths, plan = run_all(args, Path(tmp))
    ratios = print_report(results, threads=args.threads, lengths=lengths, plan=plan)
    if args.json:
        report = {
            "args": vars(args),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "lengths": lengths,
            "plan": plan,
            "ratios": ratios,
            "results": [
                asdict(r)
                | {
                    "tokens_per_s": r.tokens_per_s,
                    "padding": r.padding,
                    "cpu_share": r.cpu_share(args.threads),
                }
                for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
