"""The one training loop every trainer runs, driven by the trainer's task object
(trainers.common.task.TrainTask).

    metadata = train(cfg, VLMTask)                       # what `python -m trainers.vlm` runs

    run = build_run(cfg, VLMTask, dist=Dist(device="cuda:0"), tracker=NullTracker())
    result = train_step(run)                             # one optimizer step (benchmarks)

Runs on one process, or under torchrun (one process per GPU, or gloo on CPU). Resumes from the
newest intact committed checkpoint of the same run in `checkpoint.dir` (trainers.common.checkpoint);
a SIGTERM saves one and raises Preempted; a non-finite loss or gradient stops it
(trainers.common.divergence).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from trainers.common import checkpoint, distributed, divergence, outputs, speed, training
from trainers.common.config import to_dict
from trainers.common.logs import log
from trainers.common.preemption import Preempted, StopFlag
from trainers.common.progress import progress_line
from trainers.common.task import Run, TrainTask, total_key

StepCallback = Callable[[int], None]  # called with the number of steps done
MakeTask = Callable[[object, distributed.Dist], TrainTask]


@dataclass
class StepResult:
    """One optimizer step, summed over the ranks."""

    loss: float  # summed over the global batch's targets
    counts: dict[str, float]  # the task's counts: "targets", "tokens", ...
    sums: dict[str, float]  # the task's extra sums (MicroLoss.sums)
    grad_norm: float
    data_seconds: float  # this rank's wait for its micro-batches


def train(cfg, make_task: MakeTask, *, callbacks: Sequence[StepCallback] = ()) -> dict:
    """Train, save the model and metadata, and return the metadata (on every rank)."""

    def body(cfg, dist: distributed.Dist, tracker, stop: StopFlag) -> dict:
        run = build_run(cfg, make_task, dist=dist, tracker=tracker)
        run.task.start(run, resumed=checkpoint.resume_run(run))
        try:
            run_steps(run, stop, callbacks)
        finally:
            run.task.close()
        return finish(run)

    return training.supervise(cfg, body)


def build_run(cfg, make_task: MakeTask, *, dist: distributed.Dist, tracker) -> Run:
    """The task (its data and model), the optimizer and schedule, and the training engine."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    task = make_task(cfg, dist)
    optimizer, scheduler = training.build_optimization(task.model, cfg)
    return Run(
        cfg=cfg,
        dist=dist,
        task=task,
        engine=_engine(task, dist),
        optimizer=optimizer,
        scheduler=scheduler,
        tracker=tracker,
        peak_flops=speed.device_peak(dist.device),
        totals={total_key(metric): 0 for metric in task.totals.values()},
    )


def _engine(task: TrainTask, dist: distributed.Dist) -> torch.nn.Module:
    engine = task.model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Frozen parameters have requires_grad=False and stay out of the reducer.
        engine = DistributedDataParallel(
            engine,
            device_ids=[dist.local_rank] if dist.device != "cpu" else None,
            **task.ddp_options(dist),
        )
    return torch.compile(engine) if task.compile else engine


def run_steps(run: Run, stop: StopFlag, callbacks: Sequence[StepCallback] = ()) -> None:
    """Train from `run.step` to `train.max_steps`: log, evaluate and checkpoint on schedule."""
    cfg = run.cfg
    window = _Window()
    while run.step < cfg.train.max_steps:
        started = time.perf_counter()
        result = train_step(run)
        window.add(result, seconds=time.perf_counter() - started)
        if run.step % cfg.train.log_every == 0 or run.step == cfg.train.max_steps:
            _log_train(run, window, grad_norm=result.grad_norm)
            window = _Window()
        if cfg.train.eval_every and run.step % cfg.train.eval_every == 0:
            evaluate(run)
        if cfg.checkpoint.every_steps and run.step % cfg.checkpoint.every_steps == 0:
            checkpoint.save_run(run)
        for callback in callbacks:
            callback(run.step)
        if training.stop_requested(stop, run.dist):
            checkpoint.save_run(run)
            raise Preempted(f"stopped by SIGTERM after step {run.step}; checkpoint committed")


def train_step(run: Run) -> StepResult:
    """One optimizer step of the global batch at `run.step`; advances `run.step` and the
    running totals."""
    task, dist = run.task, run.dist
    started = time.perf_counter()
    batches = task.micro_batches(run.step)
    data_seconds = time.perf_counter() - started
    counts = _sum_over_ranks(task.counts(batches), dist)
    task.check_step(counts, batches)
    sums = _sum_over_ranks(_backward(run, batches, num_targets=counts["targets"]), dist)
    grad_norm = training.clip_trainable(task.model, run.cfg.optim.grad_clip)
    # The loss is summed and the gradients all-reduced over the ranks: every rank agrees.
    if divergence.apply_step(run, loss=sums["loss"], grad_norm=grad_norm):
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    for count, metric in task.totals.items():
        run.totals[total_key(metric)] += int(counts[count])
    return StepResult(sums.pop("loss"), counts, sums, grad_norm, data_seconds)


def _backward(run: Run, batches: list, *, num_targets: float) -> dict[str, float]:
    """Gradients of the step's loss, accumulated over this rank's micro-batches; returns
    this rank's summed loss and the task's extra sums."""
    # Normalise by the global batch's target count so any split over ranks and micro-steps
    # yields the same gradient (DDP averages over ranks, hence the world-size factor).
    scale = run.dist.world_size / max(1.0, num_targets)
    sums = Counter(loss=0.0)
    for i, batch in enumerate(batches):
        # DDP all-reduces the gradients on the last micro-batch only.
        last = i == len(batches) - 1
        no_sync = run.engine.no_sync if hasattr(run.engine, "no_sync") and not last else None
        with no_sync() if no_sync else contextlib.nullcontext():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.autocast):
                micro = run.task.loss(run.engine, batch)
            (micro.loss * scale).backward()
        sums.update({"loss": float(micro.loss.detach()), **micro.sums})
    return dict(sums)


def _sum_over_ranks(values: dict[str, float], dist: distributed.Dist) -> dict[str, float]:
    return dict(zip(values, distributed.all_reduce_sums(list(values.values()), dist), strict=True))


class _Window:
    """What the steps since the last train log consumed: summed counts, losses and time."""

    def __init__(self) -> None:
        self.seconds, self.loss, self.counts = 0.0, 0.0, Counter()

    def add(self, result: StepResult, *, seconds: float) -> None:
        self.seconds += seconds
        self.loss += result.loss
        self.counts.update(result.counts)
        self.counts.update(result.sums)


def _log_train(run: Run, window: _Window, *, grad_norm: float) -> None:
    seconds, task = max(window.seconds, 1e-9), run.task
    metrics = {
        "train/loss": window.loss / max(1, window.counts["targets"]),
        "train/lr": run.scheduler.get_last_lr()[0],
        "train/grad_norm": grad_norm,
        **{f"train/{name}_per_s": window.counts[name] / seconds for name in task.rates},
        **{metric: run.totals[total_key(metric)] for metric in task.totals.values()},
        **task.train_metrics(dict(window.counts)),
    }
    flops = task.flops(dict(window.counts))
    utilisation = speed.mfu(
        flops, seconds=seconds, peak=run.peak_flops, num_devices=run.dist.world_size
    )
    if utilisation is not None:
        metrics["train/mfu"] = utilisation
    memory = speed.peak_memory_gb(run.dist.device)
    if memory is not None:
        metrics["train/memory_gb"] = memory
    run.history["train/loss"] = metrics["train/loss"]  # the final metrics keep the loss alone
    run.tracker.log(metrics, step=run.step)
    if run.dist.is_main:
        line = progress_line(
            step=run.step,
            max_steps=run.cfg.train.max_steps,
            loss=metrics["train/loss"],
            lr=metrics["train/lr"],
            rates={n: metrics[f"train/{n}_per_s"] for n in task.rates},
        )
        log(line)


def evaluate(run: Run) -> dict:
    """Eval loss and perplexity over the ranks' shares of the eval split, logged."""
    sums = _sum_over_ranks(run.task.eval_sums(run), run.dist)
    loss = sums.pop("loss") / max(1.0, sums.pop("targets"))
    metrics = {"eval/loss": loss, "eval/perplexity": speed.perplexity(loss), **sums}
    run.log(metrics)
    if run.dist.is_main:
        log(f"step {run.step} eval loss {loss:.4f} perplexity {metrics['eval/perplexity']:.2f}")
    return metrics


def finish(run: Run) -> dict:
    """The final eval (unless the loop has just run it) and the task's end-of-run metrics;
    rank 0 saves the model; every rank returns the metadata."""
    divergence.check_weights(run.task.model, step=run.step)  # never a non-finite model
    every = run.cfg.train.eval_every
    if not every or run.step % every:
        evaluate(run)
    run.task.finish(run)
    meta = metadata(run)
    if run.dist.is_main:
        outputs.save_model(run, meta)
    distributed.barrier(run.dist)
    return meta


def metadata(run: Run) -> dict:
    """`training_metadata.json`: the config, progress and final metrics, and the task's own."""
    return {
        "config": to_dict(run.cfg),
        "steps": run.step,
        **run.totals,
        "skipped_steps": run.skipped_steps,
        "world_size": run.dist.world_size,
        "final": dict(run.history),
        "wandb": run.tracker.reference(),  # the registry records the run that made the model
        **run.task.metadata(run),
    }
