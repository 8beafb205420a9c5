"""The VLM training loop: image-text micro-batches from DataLoader workers, gradient
accumulation with `no_sync`, DDP over the trained parameters only, checkpoints, metrics.

    from trainers.vlm.presets import debug
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
from trainers.common.packing import IGNORE
from trainers.common.preemption import Preempted, StopFlag
from trainers.common.records import DataError
from trainers.lm.loss import perplexity
from trainers.vlm import evaluate, outputs, state
from trainers.vlm.batches import StepBatches, eval_loader
from trainers.vlm.config import VLMConfig
from trainers.vlm.data import VLMData, load_data, load_records, make_tokenizer
from trainers.vlm.images import ImageSpec
from trainers.vlm.model import add_lora, build_model, count_by_part, num_image_tokens

StepCallback = Callable[[int], None]


@dataclass
class Run:
    cfg: VLMConfig
    dist: distributed.Dist
    data: VLMData
    spec: ImageSpec
    model: torch.nn.Module  # unwrapped: what is saved and evaluated
    engine: torch.nn.Module  # what runs the training forward (DDP and/or compiled)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    tracker: object
    batches: StepBatches
    num_image_tokens: int
    parameters: dict[str, int]
    peak_flops: float | None
    step: int = 0
    tokens_seen: int = 0
    images_seen: int = 0
    skipped_images: int = 0
    history: dict = field(default_factory=dict)

    @property
    def autocast(self) -> bool:
        return self.cfg.train.precision == "bf16" or (
            self.cfg.train.precision == "auto" and self.dist.device.startswith("cuda")
        )

    @property
    def llava(self):
        """The Llava model under any LoRA wrapper."""
        return self.model.base_model.model if hasattr(self.model, "peft_config") else self.model


def train(cfg: VLMConfig, *, callbacks: Sequence[StepCallback] = ()) -> dict:
    """Train, save the model and metadata, and return the metadata (on every rank)."""

    def body(cfg: VLMConfig, dist: distributed.Dist, tracker, stop: StopFlag) -> dict:
        run = _build_run(cfg, dist, tracker)
        state.resume(run)
        _loop(run, stop, callbacks)
        return _finish(run)

    return training.supervise(cfg, body)


def _build_run(cfg: VLMConfig, dist: distributed.Dist, tracker) -> Run:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    records = load_records(cfg)
    tokenizer = make_tokenizer(cfg, [r for _, r in records[0]])
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and on resume
    model, spec = build_model(cfg, tokenizer=tokenizer)
    image_tokens = num_image_tokens(model)
    if cfg.lora.enabled:
        model = add_lora(model, cfg)
    model.to(dist.device).train()
    data = load_data(cfg, tokenizer=tokenizer, num_image_tokens=image_tokens, records=records)
    optimizer, scheduler = training.build_optimization(model, cfg)
    on_cuda = dist.device != "cpu"
    return Run(
        cfg=cfg,
        dist=dist,
        data=data,
        spec=spec,
        model=model,
        engine=_engine(model, cfg, dist),
        optimizer=optimizer,
        scheduler=scheduler,
        tracker=tracker,
        batches=StepBatches(data, spec, cfg=cfg, dist=dist),
        num_image_tokens=image_tokens,
        parameters=count_by_part(model),
        peak_flops=speed.peak_flops(torch.cuda.get_device_name(dist.device)) if on_cuda else None,
    )


def _engine(model, cfg: VLMConfig, dist: distributed.Dist):
    engine = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Frozen towers have requires_grad=False, so DDP neither buckets nor all-reduces them:
        # no find_unused_parameters search is needed, and static_graph is valid.
        engine = DistributedDataParallel(
            model,
            device_ids=[dist.local_rank] if dist.device != "cpu" else None,
            gradient_as_bucket_view=cfg.ddp.gradient_as_bucket_view,
            static_graph=use_static_graph(cfg, dist),
        )
    return torch.compile(engine) if cfg.language.compile else engine


def use_static_graph(cfg: VLMConfig, dist: distributed.Dist) -> bool:
    """static_graph only without gradient accumulation: in torch 2.13, static_graph with
    no_sync() fails its first backward on an internal assert and, once past that, stops
    all-reducing gradients (pytorch/pytorch#143580, fix pending in #187732)."""
    micro_steps = cfg.train.global_batch_size // (cfg.train.micro_batch_size * dist.world_size)
    return cfg.ddp.static_graph and micro_steps == 1


def _loop(run: Run, stop: StopFlag, callbacks: Sequence[StepCallback]) -> None:
    cfg = run.cfg
    window = {"loss": 0.0, "targets": 0, "tokens": 0, "images": 0, "time": 0.0}
    while run.step < cfg.train.max_steps:
        started = time.perf_counter()
        metrics = _train_step(run)
        run.step += 1
        window["time"] += time.perf_counter() - started
        for key in ("loss", "targets", "tokens", "images"):
            window[key] += metrics[key]
        run.tokens_seen += metrics["tokens"]
        run.images_seen += metrics["images"]
        run.skipped_images += metrics["skipped"]
        if run.step % cfg.train.log_every == 0 or run.step == cfg.train.max_steps:
            _log_train(run, window, grad_norm=metrics["grad_norm"])
            window = dict.fromkeys(window, 0)
        if cfg.train.eval_every and run.step % cfg.train.eval_every == 0:
            _log_eval(run)
        if cfg.checkpoint.every_steps and run.step % cfg.checkpoint.every_steps == 0:
            state.save(run)
        for callback in callbacks:
            callback(run.step)
        if training.stop_requested(stop, run.dist):
            state.save(run)
            raise Preempted(f"stopped by SIGTERM after step {run.step}; checkpoint committed")
    run.batches.close()


def _train_step(run: Run) -> dict:
    micro_batches = run.batches.for_step(run.step)
    errors = [e for b in micro_batches for e in b.errors]
    local = [
        sum(int((b.targets != IGNORE).sum()) for b in micro_batches),
        sum(b.num_tokens for b in micro_batches),
        sum(b.num_images for b in micro_batches),
        len(errors),
    ]
    num_targets, tokens, images, skipped = distributed.all_reduce_sums(local, run.dist)
    if skipped and run.cfg.data.on_bad_record == "error":
        # Every rank stops here together, rather than the others waiting on a dead peer.
        raise DataError(errors[0] if errors else "stopped: another rank read an unreadable image")
    # Normalise by the global batch's target count so any split over ranks and micro-steps
    # yields the same gradient (DDP averages over ranks, hence the world-size factor).
    scale = run.dist.world_size / max(1.0, num_targets)
    loss_sum = 0.0
    for i, batch in enumerate(micro_batches):
        loss_sum += _micro_step(run, batch, scale, sync=i == len(micro_batches) - 1)
    grad_norm = training.clip_trainable(run.model, run.cfg.optim.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return {
        "loss": distributed.all_reduce_sum(loss_sum, run.dist),
        "targets": int(num_targets),
        "tokens": int(tokens),
        "images": int(images),
        "skipped": int(skipped),
        "grad_norm": grad_norm,
    }


def _micro_step(run: Run, batch, scale: float, *, sync: bool) -> float:
    no_sync = run.engine.no_sync if hasattr(run.engine, "no_sync") and not sync else None
    with no_sync() if no_sync else contextlib.nullcontext():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.autocast):
            loss, _ = evaluate.token_loss_sum(run.engine, batch, run.dist.device)
        (loss * scale).backward()
    return float(loss.detach())


def _flops(run: Run, *, tokens: int, images: int) -> float:
    """Model FLOPs of a step: the language model per token (6N trained, 4N frozen: the
    backward still runs through it), the vision tower per image patch (2N when frozen:
    nothing before it needs gradients, so it runs forward only)."""
    vision = sum(p.numel() for p in run.llava.model.vision_tower.parameters())
    trained_vision = run.parameters["vision"]
    text = run.llava.config.text_config
    per_token = speed.flops_per_token(
        num_params=run.parameters["total"] - vision,
        num_trainable=run.parameters["trainable"] - trained_vision,
        num_layers=text.num_hidden_layers,
        hidden_size=text.hidden_size,
        seq_len=max(1, tokens // max(1, images)),
    )
    per_patch = (6 if trained_vision else 2) * vision
    return per_token * tokens + per_patch * run.num_image_tokens * images


def _log_train(run: Run, window: dict, *, grad_norm: float) -> None:
    seconds = max(window["time"], 1e-9)
    metrics = {
        "train/loss": window["loss"] / max(1, window["targets"]),
        "train/lr": run.scheduler.get_last_lr()[0],
        "train/grad_norm": grad_norm,
        "train/tokens_per_s": window["tokens"] / seconds,
        "train/images_per_s": window["images"] / seconds,
        "train/tokens_seen": run.tokens_seen,
        "train/images_seen": run.images_seen,
        "data/skipped_images": run.skipped_images,
    }
    if run.peak_flops is not None:
        flops = _flops(run, tokens=window["tokens"], images=window["images"])
        metrics["train/mfu"] = flops / seconds / (run.peak_flops * run.dist.world_size)
    run.history["train/loss"] = metrics["train/loss"]
    run.tracker.log(metrics, step=run.step)
    if run.dist.is_main:
        print(
            f"step {run.step}/{run.cfg.train.max_steps} loss {metrics['train/loss']:.4f} "
            f"lr {metrics['train/lr']:.2e} images/s {metrics['train/images_per_s']:,.1f} "
            f"tokens/s {metrics['train/tokens_per_s']:,.0f}",
            flush=True,
        )


def _log_eval(run: Run) -> dict:
    cfg, dist = run.cfg, run.dist
    loader = eval_loader(run.data.eval[dist.rank :: dist.world_size], run, num_workers=0)
    total, count, skipped = evaluate.eval_loss(
        run.model,
        loader,
        device=dist.device,
        autocast=run.autocast,
        on_bad=cfg.data.on_bad_record,
        max_batches=cfg.train.eval_batches,
    )
    total, count, skipped = distributed.all_reduce_sums([total, count, skipped], dist)
    loss = total / max(1.0, count)
    metrics = {"eval/loss": loss, "eval/perplexity": perplexity(loss)}
    metrics["data/skipped_eval_images"] = skipped
    run.history.update(metrics)
    run.tracker.log(metrics, step=run.step)
    if dist.is_main:
        print(f"step {run.step} eval loss {loss:.4f}", flush=True)
    return metrics


def _log_exact_match(run: Run) -> None:
    cfg = run.cfg
    if not cfg.train.exact_match_examples or not run.dist.is_main:
        return
    from trainers.vlm.batches import vqa_items

    items, _ = vqa_items(
        run.data.eval_located,
        run.spec,
        on_bad=cfg.data.on_bad_record,
        limit=cfg.train.exact_match_examples,
    )
    score, _ = evaluate.exact_match(
        run.model,
        run.data.tokenizer,
        items,
        num_image_tokens=run.num_image_tokens,
        max_new_tokens=cfg.train.max_new_tokens,
        device=run.dist.device,
    )
    chance = evaluate.chance_exact_match(run.data.train_records, run.data.eval_records)
    run.history.update({"eval/vqa_exact_match": score, "eval/chance_exact_match": chance})
    run.tracker.log(
        {"eval/vqa_exact_match": score, "eval/chance_exact_match": chance}, step=run.step
    )
    print(
        f"step {run.step} VQA exact match {score:.3f} on {len(items)} held-out questions "
        f"(question-prior chance {chance:.3f})",
        flush=True,
    )


def _finish(run: Run) -> dict:
    every = run.cfg.train.eval_every
    if not every or run.step % every:  # the loop has not just evaluated this step
        _log_eval(run)
    _log_exact_match(run)
    metadata = outputs.metadata(run)
    if run.dist.is_main:
        outputs.save_model(run, metadata)
    distributed.barrier(run.dist)
    return metadata
