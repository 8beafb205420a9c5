"""The ARR-COC training task that the one training loop (trainers.common.loop) drives: one stage
(`relevance.stage`) per run, starting from the previous stage's saved model (`init_model`).

    from trainers.arr_coc.presets import debug
    metadata = train(debug())                                         # stage 1
    metadata = train(replace(cfg, init_model="outputs/stage1", ...))  # then 2 and 3

What trains: the relevance head (stage 3: with the balancer's budget threshold), LoRA adapters
on the LM in stages 2-3 when `lora.enabled`, and in stage 1 with `base.train_in_stage1` every
weight of the base too. A checkpoint holds the trained weights only: the frozen rest is rebuilt
identically from `init_model` or the seeded scratch base. A step's records depend on the step
alone (trainers.arr_coc.data), so a resumed run trains on exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainers.arr_coc import data as data_lib
from trainers.arr_coc import evaluate, saved, tracking
from trainers.arr_coc.balancing import WAYS
from trainers.arr_coc.config import SCRATCH, ArrCocConfig, model_config
from trainers.arr_coc.losses import has_mask
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.qwen import build_scratch, load_base
from trainers.arr_coc.stages import set_trainable, stage_step, uses_distill
from trainers.common import distributed, loop, speed
from trainers.common.distributed import Dist
from trainers.common.packing import IGNORE
from trainers.common.records import DataError
from trainers.common.task import MicroLoss, PartlyFrozenTask, Run

# What a step logs besides the loop's own, each a mean over the window's examples (the loop
# sums a micro-batch's value times its examples over micro-batches, ranks and steps); the
# RELEVANCE ones are over the examples with a mask.
PER_EXAMPLE = (
    *[f"knowing/{w}_{s}" for w in WAYS for s in ("mean", "std")],
    *[f"balancer/{w}" for w in WAYS],
    "balancer/threshold",
    "compression_ratio",
    *[f"allocation/{s}_tokens" for s in ("mean", "min", "max", "std")],
    "answer/accuracy",
)
RELEVANCE = ("relevance/precision_at_k", "relevance/recall_at_k", "relevance/soft_iou")


def train(cfg: ArrCocConfig, *, callbacks: Sequence[loop.StepCallback] = ()) -> dict:
    """Train one stage, save the model and metadata, and return the metadata (every rank)."""
    return loop.train(cfg, ArrCocTask, callbacks=callbacks)


def initial_model(cfg: ArrCocConfig, *, texts: list[str]):
    """(ArrCoc, Base): the previous stage's model, else the base with a fresh head."""
    if cfg.init_model:
        model, base, _ = saved.load(cfg.init_model)
        model.cfg = cfg.relevance  # this stage's losses and budget
        return model, base
    if cfg.base.source == SCRATCH:
        base = build_scratch(cfg.base, texts=texts, seed=cfg.train.seed)
    else:
        base = load_base(cfg.base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)  # the same head on every rank and resume
        model = ArrCoc(base, cfg.relevance)
    return model, base


def record_texts(records: list[dict]) -> list[str]:
    """A scratch tokenizer's training text: every question and answer."""
    return [r[key] for r in records for key in ("question", "answer")]


def check_records(cfg: ArrCocConfig, records: list[dict]) -> None:
    """Before any model is built: the stage has records, and stage 1 (without the dense
    distillation target) has object masks to learn where to look from."""
    where = cfg.data.train or "the debug scenes"
    if not records:
        raise DataError(f"{where}: no training records for stage {cfg.relevance.stage}")
    masked = any("mask" in r or "boxes" in r for r in records)
    distill = uses_distill(cfg.relevance, stage=1, train_base=cfg.base.train_in_stage1)
    if cfg.relevance.stage == 1 and not masked and not distill:
        raise DataError(
            f"{where}: stage 1 learns where to look from object masks, and no training record "
            "has a 'mask' or 'boxes' (nor does stage 1 use relevance.distill_weight)"
        )


def num_masked(batch) -> int:
    """Examples whose record has a mask (or boxes)."""
    return sum(has_mask(m) for m in batch.cell_masks)


class ArrCocTask(PartlyFrozenTask):
    rates = ("examples", "tokens")
    totals = {"tokens": "train/tokens_seen", "examples": "train/examples_seen"}

    def __init__(self, cfg: ArrCocConfig, dist: Dist) -> None:
        self.cfg, self.dist, self.stage = cfg, dist, cfg.relevance.stage
        # The same initial weights (head, LoRA adapters) on every rank, run and resume.
        torch.manual_seed(cfg.train.seed)
        split, skipped = data_lib.load_records(cfg)
        self.data = data_lib.StageData.of(split, stage=self.stage, skipped=skipped)
        check_records(cfg, self.data.train_records)
        self.train_records = self.data.train_records
        model, self.base = initial_model(cfg, texts=record_texts(self.data.all_train_records))
        set_trainable(model, stage=self.stage, lora=cfg.lora)
        self.train_base = self.stage == 1 and cfg.base.train_in_stage1
        self.distill = uses_distill(cfg.relevance, stage=self.stage, train_base=self.train_base)
        if self.train_base:
            model.vlm.requires_grad_(True)
        self.model = model.to(dist.device).train()

    def micro_batches(self, step: int) -> list:
        batches = data_lib.step_batches(
            self.data, base=self.base, step=step, cfg=self.cfg, dist=self.dist
        )
        return [b.to(self.dist.device) for b in batches]

    def counts(self, batches: list) -> dict[str, float]:
        return {
            "targets": sum(self._num_targets(b) for b in batches),
            "tokens": sum(int(b.attention_mask.sum()) for b in batches),
            "examples": sum(b.num_examples for b in batches),
        }

    def _num_targets(self, batch) -> int:
        """What a stage's loss is normalised by (as stages.stage_step counts it)."""
        if self.stage == 2:
            return int((batch.labels[:, 1:] != IGNORE).sum())
        if self.stage == 1 and not self.train_base and not self.distill:
            return num_masked(batch)
        return batch.num_examples

    def loss(self, engine, batch) -> MicroLoss:
        result = stage_step(
            self.model, batch, stage=self.stage, engine=engine, train_base=self.train_base
        )
        n, masked = batch.num_examples, num_masked(batch)
        metrics = result.metrics
        sums = {f"sum/{k}": metrics.get(k, 0.0) * n for k in PER_EXAMPLE}
        sums |= {f"sum/{k}": metrics.get(k, 0.0) * masked for k in RELEVANCE}
        return MicroLoss(result.loss_sum, sums={**sums, "masked": float(masked)})

    def train_metrics(self, window: dict[str, float]) -> dict[str, float]:
        examples, masked = window.get("examples", 0.0), window.get("masked", 0.0)
        metrics = {k: window[f"sum/{k}"] / max(1.0, examples) for k in PER_EXAMPLE}
        if masked:
            metrics |= {k: window[f"sum/{k}"] / masked for k in RELEVANCE}
        if self.stage == 1 and not self.train_base:
            metrics.pop("answer/accuracy")  # the LM did not run
        return metrics

    def flops(self, counts: dict[str, float]) -> float:
        """Per token of the LM's sequence: 6N for the trained weights, 4N for frozen ones
        (the backward still runs through them) — the vision tower and head ride along."""
        params = sum(p.numel() for p in self.model.parameters())
        trained = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        text = self.model.vlm.config.text_config
        per_token = speed.flops_per_token(
            num_params=params,
            num_trainable=trained,
            num_layers=text.num_hidden_layers,
            hidden_size=text.hidden_size,
            seq_len=max(1, int(counts["tokens"] // max(1, counts["examples"]))),
        )
        return per_token * counts["tokens"]

    def eval_sums(self, run: Run) -> dict[str, float]:
        """The stage's loss on this rank's share of the first `train.eval_batches` batches."""
        return evaluate.stage_sums(
            self.model,
            self.base,
            self.data.eval[self.dist.rank :: self.dist.world_size],
            stage=self.stage,
            train_base=self.train_base,
            batch_size=self.cfg.train.micro_batch_size,
            max_batches=self.cfg.train.eval_batches,
            device=self.dist.device,
        )

    def start(self, run: Run, *, resumed: bool) -> None:
        """The stage's eval loss before its first step (`eval/initial_loss`; a resumed run has
        it in its history): what the stage is to improve."""
        if resumed:
            return
        sums = self.eval_sums(run)
        loss, targets = distributed.all_reduce_sums([sums["loss"], sums["targets"]], self.dist)
        run.log({"eval/initial_loss": loss / max(1.0, targets)})

    def finish(self, run: Run) -> None:
        """Accuracy against budget for ARR-COC and the baselines, kept cells drawn: rank 0."""
        if not self.cfg.train.exact_match_examples or not self.dist.is_main:
            return
        tracking.log_stage_end(
            run, self.model, self.base, self.data.eval, limit=self.cfg.train.exact_match_examples
        )

    def metadata(self, run: Run) -> dict:
        data = self.data
        return {
            "stage": self.stage,
            "init_model": self.cfg.init_model,
            "dataset": {
                "fingerprint": data.fingerprint,
                "skipped_records": data.skipped_records,
                "duplicates_removed": data.duplicates_removed,
                "train_examples": len(data.train),
                "eval_examples": len(data.eval),
            },
        }

    def write_model_dir(self, local: str) -> None:
        saved.save(self.model, self.base, model_config(self.cfg), local)
