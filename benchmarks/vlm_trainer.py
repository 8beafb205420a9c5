"""liftoff's VLM trainer against a plain HF-style loop: same model, weights, data and steps.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vlm_trainer.py [--steps 150] [--warmup 10]
        [--preset debug] [--set section.field=value ...] [--device auto|cpu|cuda]
        [--threads 1] [--rounds 5] [--json results.json]

Prints one row per side (optimizer steps timed, images and non-padding tokens consumed, seconds,
images/s, tokens/s, the share of that time spent making or waiting for batches, the share of
computed positions that is padding, the CPU share the main process got, the mean training loss
of the last 5 steps, and MFU on CUDA), then the ratios liftoff / baseline of images/s and
tokens/s, where

    liftoff   the trainer's own run and steps (trainers.common.loop `build_run` with the VLM task,
              then `train_step`): optimizer over the trainable parameters only, frozen vision
              tower per the preset, StepBatches with DataLoader workers decoding images,
              micro-batches padded to their longest, `token_loss_sum`, gradient accumulation,
              clipping, AdamW (fused on CUDA)
    baseline  benchmarks/vlm_baseline.py: images decoded and processed by SiglipImageProcessor in
              the main process per batch, padding to max_length, HF's mean loss, AdamW over every
              parameter (the tower included: the naive loop never freezes it)

Shared: the preset's config (`--set` applies to both), the debug synthetic shapes records
(liftoff's train split), liftoff's tokenizer and image spec, the initial weights (the same seed
before the same `build_model`), micro-batch size and gradient accumulation, learning rate and
warmup, clipping, the torch thread count, the number of optimizer steps and the device; on CUDA
both run in bf16 autocast. The orders of the examples differ (each side shuffles its own way), so
the losses agree only roughly: they are a check that both sides learn, not a result. Before
anything is timed, `check_same_inputs` asserts that the baseline's first micro-batch holds the
trainer's token ids, loss targets and pixels exactly.

Timed: each optimizer step, from its start to its end, after the first `--warmup` steps of each
side (model building, worker start-up and first-step costs are left out). The timed steps run in
`--rounds` alternating chunks (liftoff's, then the baseline's, and again), so the load that other
processes put on a shared machine falls on both sides alike; the time a side is paused is not
counted. Between its chunks liftoff's workers fill their prefetch queue (4 batches each), which
hides some data wait at the start of each chunk: `--rounds 1` runs the sides one after the other.
MFU counts the model FLOPs of liftoff's config (the VLM task's `flops`: frozen tower
forward-only) for both sides, so the baseline's extra tower backward shows as lower MFU, not as
more useful work.

One torch thread by default: on a 2-core machine that leaves a core to liftoff's decoding
workers, which is what they are for; the baseline decodes on its one thread between steps.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

# Run as a file, the repository root is not on sys.path; the trainers package lives there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from benchmarks.vlm_baseline import (  # noqa: E402
    Step,
    baseline_steps,
    check_same_inputs,
    clocks,
    finish_step,
    max_length,
)
from trainers.common import loop, speed  # noqa: E402
from trainers.common.config import apply_overrides  # noqa: E402
from trainers.common.distributed import Dist  # noqa: E402
from trainers.common.task import Run  # noqa: E402
from trainers.common.tracking import NullTracker  # noqa: E402
from trainers.vlm.config import VLMConfig  # noqa: E402
from trainers.vlm.presets import PRESETS, get_preset  # noqa: E402
from trainers.vlm.train import VLMTask  # noqa: E402

FINAL_STEPS = 5  # the loss column averages this many last steps
MIN_CPU_SHARE = 0.9  # below this the baseline was slowed by other processes on the machine


@dataclass
class Result:
    side: str
    steps: int  # optimizer steps inside the timed window
    images: int
    tokens: int  # non-padding tokens, image placeholders included
    positions: int  # computed token positions, padding included
    seconds: float
    data_seconds: float  # making (baseline) or waiting for (liftoff) batches, inside `seconds`
    cpu_seconds: float  # the main process's CPU time (liftoff's decoding workers not included)
    final_loss: float
    trainable: int  # parameters with requires_grad
    mfu: float | None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def padding(self) -> float:
        return 1 - self.tokens / self.positions

    def cpu_share(self, threads: int) -> float:
        return self.cpu_seconds / (self.seconds * threads)


def summarise(side: str, steps: list[Step], *, warmup: int, trainable: int, mfu) -> Result:
    """The timed steps (those after `warmup`) of one side's run."""
    window, last = steps[warmup:], steps[-FINAL_STEPS:]
    seconds = sum(s.seconds for s in window)
    images, tokens = sum(s.images for s in window), sum(s.tokens for s in window)
    return Result(
        side=side,
        steps=len(window),
        images=images,
        tokens=tokens,
        positions=sum(s.positions for s in window),
        seconds=seconds,
        data_seconds=sum(s.data_seconds for s in window),
        cpu_seconds=sum(s.cpu_seconds for s in window),
        final_loss=sum(s.loss for s in last) / len(last),
        trainable=trainable,
        mfu=mfu(tokens=tokens, images=images, seconds=seconds),
    )


def interleave(sides: dict[str, Iterator[Step]], *, warmup: int, size: int) -> dict:
    """Each side's steps: first the warm-up of each, then alternating chunks of `size` timed
    steps until every side is done, so load from other processes falls on both sides alike."""
    steps = {name: list(itertools.islice(it, warmup)) for name, it in sides.items()}
    while sides:
        for name, it in list(sides.items()):
            chunk = list(itertools.islice(it, size))
            steps[name] += chunk
            if len(chunk) < size:
                del sides[name]
    return steps


# --- liftoff -------------------------------------------------------------------------------


def liftoff_config(args: argparse.Namespace) -> VLMConfig:
    overrides = {
        "train.max_steps": args.steps,
        "train.threads": args.threads,
        # Only the training steps run: no eval, generation, checkpoint or W&B.
        "train.eval_every": 0,
        "train.exact_match_examples": 0,
        "checkpoint.every_steps": 0,
        "wandb.enabled": False,
    }
    ours = [f"{key}={value}" for key, value in overrides.items()]
    return apply_overrides(get_preset(args.preset), ours + list(args.set))


def build_liftoff(cfg: VLMConfig, device: str) -> Run:
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    return loop.build_run(cfg, VLMTask, dist=Dist(device=device), tracker=NullTracker())


def liftoff_steps(run: Run) -> Iterator[Step]:
    """`run.cfg.train.max_steps` optimizer steps through the trainer's own `train_step`."""
    try:
        while run.step < run.cfg.train.max_steps:
            started = clocks()
            result = loop.train_step(run)
            counts = result.counts
            yield finish_step(
                run.dist.device,
                started,
                data_seconds=result.data_seconds,
                images=int(counts["images"]),
                tokens=int(counts["tokens"]),
                positions=int(counts["positions"]),
                loss=result.loss / max(1, counts["targets"]),
            )
    finally:
        run.task.close()  # stops the workers


def mfu_of(run: Run):
    """Model FLOP/s of liftoff's config as a share of the device's bf16 peak (None off CUDA)."""

    def mfu(*, tokens: int, images: int, seconds: float) -> float | None:
        flops = run.task.flops({"tokens": tokens, "images": images})
        return speed.mfu(flops, seconds=seconds, peak=run.peak_flops, num_devices=1)

    return mfu


# --- report --------------------------------------------------------------------------------


def print_report(results: list[Result], *, args: argparse.Namespace, plan: dict) -> dict:
    threads = torch.get_num_threads()
    print(
        f"\npreset {args.preset} on {plan['device']}, {threads} torch thread(s); "
        f"{plan['global_batch']} images/step as {plan['accumulation']} x {plan['micro_batch']}; "
        f"{plan['image_tokens']} image tokens per example; baseline pads to "
        f"{plan['max_length']}; liftoff decodes in {plan['num_workers']} worker(s); timed steps "
        f"in {plan['rounds']} alternating round(s)\n"
    )
    header = (
        f"{'side':<10}{'steps':>6}{'images':>8}{'tokens':>10}{'seconds':>9}{'images/s':>10}"
        f"{'tokens/s':>10}{'data':>7}{'padding':>9}{'cpu':>6}{'trainable':>11}{'loss':>8}"
        f"{'MFU':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        mfu = "-" if r.mfu is None else f"{r.mfu:.1%}"
        print(
            f"{r.side:<10}{r.steps:>6}{r.images:>8,}{r.tokens:>10,}{r.seconds:>9.2f}"
            f"{r.images_per_s:>10,.1f}{r.tokens_per_s:>10,.0f}"
            f"{r.data_seconds / r.seconds:>7.0%}{r.padding:>9.1%}{r.cpu_share(threads):>6.0%}"
            f"{r.trainable:>11,}{r.final_loss:>8.3f}{mfu:>8}"
        )
    liftoff, baseline = results
    ratios = {
        "images_per_s": liftoff.images_per_s / baseline.images_per_s,
        "tokens_per_s": liftoff.tokens_per_s / baseline.tokens_per_s,
    }
    print(
        f"\nliftoff / baseline: images/s {ratios['images_per_s']:.2f}x   "
        f"tokens/s {ratios['tokens_per_s']:.2f}x\n"
        f"data: share of the time making or waiting for batches; loss: mean of the last "
        f"{FINAL_STEPS} steps; cpu: the main process's CPU time / (wall time x threads)"
    )
    if plan["device"] == "cpu" and baseline.cpu_share(threads) < MIN_CPU_SHARE:
        # The baseline never waits on anything but its own thread(s): below 90% it lost CPU.
        print("warning: other processes slowed the baseline; the ratios are skewed")
    return ratios


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per side")
    p.add_argument("--warmup", type=int, default=10, help="first steps left out of the timing")
    p.add_argument("--preset", default="debug", choices=sorted(PRESETS))
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="config override for both sides (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:N]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument(
        "--rounds", type=int, default=5, help="alternating chunks of timed steps per side"
    )
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not 0 < args.warmup < args.steps:
        p.error(f"--warmup={args.warmup} must be in [1, --steps)")
    if not 0 < args.rounds <= args.steps - args.warmup:
        p.error(f"--rounds={args.rounds} must be in [1, --steps - --warmup]")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda":
        args.device = "cuda:0"
    return args


def run_all(args: argparse.Namespace) -> tuple[list[Result], dict]:
    run = build_liftoff(liftoff_config(args), args.device)
    cfg, task, mfu = run.cfg, run.task, mfu_of(run)
    check_same_inputs(cfg, data=task.data, spec=task.spec, num_image_tokens=task.num_image_tokens)
    baseline = baseline_steps(
        cfg,
        data=task.data,
        spec=task.spec,
        num_image_tokens=task.num_image_tokens,
        device=args.device,
        autocast=run.autocast,
        num_steps=args.steps,
    )
    size = math.ceil((args.steps - args.warmup) / args.rounds)
    steps = interleave(
        {"liftoff": liftoff_steps(run), "baseline": baseline}, warmup=args.warmup, size=size
    )
    # The baseline trains every parameter of the same architecture.
    trainable = {"liftoff": task.parameters["trainable"], "baseline": task.parameters["total"]}
    results = [
        summarise(side, steps[side], warmup=args.warmup, trainable=trainable[side], mfu=mfu)
        for side in ("liftoff", "baseline")
    ]
    plan = {
        "device": args.device,
        "global_batch": cfg.train.global_batch_size,
        "micro_batch": cfg.train.micro_batch_size,
        "accumulation": task.batches.accumulation,
        "image_tokens": task.num_image_tokens,
        "max_length": max_length(cfg, num_image_tokens=task.num_image_tokens),
        "num_workers": cfg.data.num_workers,
        "rounds": args.rounds,
    }
    return results, plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    results, plan = run_all(args)
    ratios = print_report(results, args=args, plan=plan)
    if args.json:
        report = {
            "args": vars(args),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "plan": plan,
            "ratios": ratios,
            "results": [
                asdict(r)
                | {
                    "images_per_s": r.images_per_s,
                    "tokens_per_s": r.tokens_per_s,
                    "padding": r.padding,
                    "cpu_share": r.cpu_share(torch.get_num_threads()),
                }
                for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
