"""The LLM fine-tuning loop: packed batches, gradient accumulation, DDP, checkpoints, metrics.

    from trainers.llm.presets import debug
    metadata = train(debug())

Runs on one CPU process, or under torchrun (one process per GPU, or gloo on CPU). Resumes from
the newest committed checkpoint in `checkpoint.dir`; a SIGTERM saves one and raises Preempted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from trainers.common import distributed, speed, training
from trainers.common.batches import global_batch_rows, rank_micro_batches
from trainers.common.preemption import Preempted, StopFlag
from trainers.llm import evaluate, outputs
from trainers.llm.config import LLMConfig
from trainers.llm.data import LLMData, load_data
from trainers.lm import loss as lm_loss
from trainers.lm.model import add_lora, build_model, count_parameters

StepCallback = Callable[[int], None]


@dataclass
class Run:
    cfg: LLMConfig
    dist: distributed.Dist
    data: LLMData
    model: torch.nn.Module  # unwrapped: what is saved and evaluated
    engine: torch.nn.Module  # what runs the training forward (DDP and/or compiled)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    tracker: object
    flops_per_token: float
    peak_flops: float | None
    step: int = 0
    tokens_seen: int = 0
    history: dict = field(default_factory=dict)

    @property
    def autocast(self) -> bool:
        return self.cfg.train.precision == "bf16" or (
            self.cfg.train.precision == "auto" and self.dist.device.startswith("cuda")
        )


def train(cfg: LLMConfig, *, callbacks: Sequence[StepCallback] = ()) -> dict:
    """Train, save the model and metadata, and return the metadata (on every rank)."""

    def body(cfg: LLMConfig, dist: distributed.Dist, tracker, stop: StopFlag) -> dict:
        run = _build_run(cfg, dist, tracker)
        _resume_or_start(run)
        _loop(run, stop, callbacks)
        return _finish(run)

    return training.supervise(cfg, body)


def _build_run(cfg: LLMConfig, dist: distributed.Dist, tracker) -> Run:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    data = load_data(cfg)
    model = build_model(cfg.model, vocab_size=len(data.tokenizer))
    if cfg.lora.enabled:
        model = add_lora(model, cfg.lora)
    model.to(dist.device).train()
    optimizer, scheduler = training.build_optimization(model, cfg)
    num_params, num_trainable = count_parameters(model)
    base = model.config
    flops = speed.flops_per_token(
        num_params=num_params,
        num_trainable=num_trainable,
        num_layers=base.num_hidden_layers,
        hidden_size=base.hidden_size,
        seq_len=cfg.data.seq_len,
    )
    peak = (
        speed.peak_flops(torch.cuda.get_device_name(dist.device)) if dist.device != "cpu" else None
    )
    return Run(
        cfg=cfg,
        dist=dist,
        data=data,
        model=model,
        engine=_engine(model, cfg, dist),
        optimizer=optimizer,
        scheduler=scheduler,
        tracker=tracker,
        flops_per_token=flops,
        peak_flops=peak,
    )


def _engine(model, cfg: LLMConfig, dist: distributed.Dist):
    engine = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Frozen parameters (LoRA bases) have requires_grad=False and stay out of the reducer.
        engine = DistributedDataParallel(
            model,
            device_ids=[dist.local_rank] if dist.device != "cpu" else None,
            gradient_as_bucket_view=True,
        )
    return torch.compile(engine) if cfg.model.compile else engine


def _resume_or_start(run: Run) -> None:
    found = training.load_checkpoint(run.cfg, run.dist)
    if found is None:
        _log_exact_match(run, key="eval/exact_match")  # the untrained baseline
        return
    path, shared = found
    run.model.load_state_dict(shared["model"])
    run.optimizer.load_state_dict(shared["optimizer"])
    run.scheduler.load_state_dict(shared["scheduler"])
    run.step, run.tokens_seen = shared["step"], shared["tokens_seen"]
    run.history = shared.get("history", {})
    print(f"resumed from {path} at step {run.step}", flush=True)


def _save(run: Run) -> str:
    shared = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "step": run.step,
        "tokens_seen": run.tokens_seen,
        "samples_seen": run.step * run.cfg.train.global_batch_size,
        "history": run.history,
    }
    return training.save_checkpoint(run.cfg, run.dist, step=run.step, shared=shared)


def _loop(run: Run, stop: StopFlag, callbacks: Sequence[StepCallback]) -> None:
    cfg = run.cfg
    window = {"loss": 0.0, "targets": 0, "tokens": 0, "time": 0.0, "steps": 0}
    while run.step < cfg.train.max_steps:
        started = time.perf_counter()
        metrics = _train_step(run)
        run.step += 1
        window["time"] += time.perf_counter() - started
        window["steps"] += 1
        for key in ("loss", "targets", "tokens"):
            window[key] += metrics[key]
        run.tokens_seen += metrics["tokens"]
        if run.step % cfg.train.log_every == 0 or run.step == cfg.train.max_steps:
            _log_train(run, window, grad_norm=metrics["grad_norm"])
            window = dict.fromkeys(window, 0)
        if cfg.train.eval_every and run.step % cfg.train.eval_every == 0:
            _log_eval(run)
        if cfg.checkpoint.every_steps and run.step % cfg.checkpoint.every_steps == 0:
            _save(run)
        for callback in callbacks:
            callback(run.step)
        if training.stop_requested(stop, run.dist):
            _save(run)
            raise Preempted(f"stopped by SIGTERM after step {run.step}; checkpoint committed")


def _train_step(run: Run) -> dict:
    cfg, dist, packed = run.cfg, run.dist, run.data.train
    rows = global_batch_rows(
        run.step,
        num_rows=len(packed.input_ids),
        global_batch=cfg.train.global_batch_size,
        seed=cfg.train.seed,
    )
    # Normalise by the global batch's target count so any split over ranks and micro-steps
    # yields the same gradient (DDP averages over ranks, hence the world-size factor).
    num_targets = int(packed.row_targets[rows].sum())
    scale = dist.world_size / max(1, num_targets)
    micro_batches = rank_micro_batches(
        rows, rank=dist.rank, world_size=dist.world_size, micro_batch=cfg.train.micro_batch_size
    )
    loss_sum = 0.0
    for i, micro in enumerate(micro_batches):
        loss_sum += _micro_step(run, micro, scale, sync=i == len(micro_batches) - 1)
    grad_norm = training.clip_trainable(run.model, run.cfg.optim.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return {
        "loss": distributed.all_reduce_sum(loss_sum, dist),
        "targets": num_targets,
        "tokens": int(packed.row_tokens[rows].sum()),
        "grad_norm": grad_norm,
    }


def _micro_step(run: Run, rows: list[int], scale: float, *, sync: bool) -> float:
    packed, device = run.data.train, run.dist.device
    ids, pos, tgt = (
        t[rows].to(device, non_blocking=True)
        for t in (packed.input_ids, packed.position_ids, packed.targets)
    )
    no_sync = run.engine.no_sync if hasattr(run.engine, "no_sync") and not sync else None
    with no_sync() if no_sync else contextlib.nullcontext():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.autocast):
            loss = lm_loss.token_loss_sum(run.engine, ids, pos, tgt)
        (loss * scale).backward()
    return float(loss.detach())


def _log_train(run: Run, window: dict, *, grad_norm: float) -> None:
    tokens_per_s = window["tokens"] / max(window["time"], 1e-9)
    metrics = {
        "train/loss": window["loss"] / max(1, window["targets"]),
        "train/lr": run.scheduler.get_last_lr()[0],
        "train/grad_norm": grad_norm,
        "train/tokens_per_s": tokens_per_s,
        "train/tokens_seen": run.tokens_seen,
    }
    utilisation = speed.mfu(tokens_per_s / run.dist.world_size, run.flops_per_token, run.peak_flops)
    if utilisation is not None:
        metrics["train/mfu"] = utilisation
    run.history["train/loss"] = metrics["train/loss"]
    run.tracker.log(metrics, step=run.step)
    if run.dist.is_main:
        print(
            f"step {run.step}/{run.cfg.train.max_steps} loss {metrics['train/loss']:.4f} "
            f"lr {metrics['train/lr']:.2e} tokens/s {tokens_per_s:,.0f}",
            flush=True,
        )


def _log_eval(run: Run) -> dict:
    cfg, dist = run.cfg, run.dist
    rows = list(range(dist.rank, len(run.data.eval.input_ids), dist.world_size))
    total, count = lm_loss.eval_loss(
        run.model,
        run.data.eval,
        batch_size=cfg.train.micro_batch_size,
        max_batches=cfg.train.eval_batches,
        device=dist.device,
        autocast=run.autocast,
        rows=rows,
    )
    loss = distributed.all_reduce_sum(total, dist) / max(
        1.0, distributed.all_reduce_sum(count, dist)
    )
    metrics = {"eval/loss": loss, "eval/perplexity": lm_loss.perplexity(loss)}
    run.history.update(metrics)
    run.tracker.log(metrics, step=run.step)
    if dist.is_main:
        print(
            f"step {run.step} eval loss {loss:.4f} perplexity {metrics['eval/perplexity']:.2f}",
            flush=True,
        )
    return metrics


def _log_exact_match(run: Run, *, key: str) -> None:
    cfg = run.cfg
    if not cfg.train.exact_match_examples or not run.dist.is_main:
        return
    records = run.data.eval_records[: cfg.train.exact_match_examples]
    score, _ = evaluate.exact_match(
        run.model,
        run.data.tokenizer,
        records,
        max_new_tokens=cfg.train.max_new_tokens,
        device=run.dist.device,
    )
    run.history.setdefault("eval/initial_exact_match", score)
    run.history[key] = score
    run.tracker.log({key: score}, step=run.step)
    print(f"step {run.step} exact match {score:.3f} on {len(records)} held-out prompts", flush=True)


def _finish(run: Run) -> dict:
    every = run.cfg.train.eval_every
    if not every or run.step % every:  # the loop has not just evaluated this step
        _log_eval(run)
    _log_exact_match(run, key="eval/exact_match")
    metadata = outputs.metadata(run)
    if run.dist.is_main:
        outputs.save_model(run, metadata)
    distributed.barrier(run.dist)
    return metadata
