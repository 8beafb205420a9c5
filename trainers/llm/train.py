"""The LLM fine-tuning task that the one training loop (trainers.common.loop) drives: packed
rows of the global batch, token loss with no attention across examples, LoRA or full weights,
eval loss and held-out exact match before and after training.

    from trainers.llm.presets import debug
    metadata = train(debug())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from trainers.common import loop, speed
from trainers.common.batches import global_batch_rows, rank_micro_batches
from trainers.common.distributed import Dist
from trainers.common.logs import log
from trainers.common.task import MicroLoss, Run, TrainTask
from trainers.llm import evaluate
from trainers.llm.config import LLMConfig
from trainers.llm.data import load_data
from trainers.lm import loss as lm_loss
from trainers.lm.model import add_lora, build_model, count_parameters, save_trained


def train(cfg: LLMConfig, *, callbacks: Sequence[loop.StepCallback] = ()) -> dict:
    """Train, save the model and metadata, and return the metadata (on every rank)."""
    return loop.train(cfg, LLMTask, callbacks=callbacks)


class LLMTask(TrainTask):
    def __init__(self, cfg: LLMConfig, dist: Dist) -> None:
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and resume
        self.cfg, self.dist = cfg, dist
        self.data = load_data(cfg)
        model = build_model(cfg.model, vocab_size=len(self.data.tokenizer))
        if cfg.lora.enabled:
            model = add_lora(model, cfg.lora)
        self.model = model.to(dist.device).train()
        self.train_records = self.data.train_records
        self.compile = cfg.model.compile
        num_params, num_trainable = count_parameters(model)
        self.flops_per_token = speed.flops_per_token(
            num_params=num_params,
            num_trainable=num_trainable,
            num_layers=model.config.num_hidden_layers,
            hidden_size=model.config.hidden_size,
            seq_len=cfg.data.seq_len,
        )

    def micro_batches(self, step: int) -> list[list[int]]:
        """Row indices into the packed train split."""
        train = self.cfg.train
        rows = global_batch_rows(
            step,
            num_rows=len(self.data.train.input_ids),
            global_batch=train.global_batch_size,
            seed=train.seed,
        )
        return rank_micro_batches(
            rows,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            micro_batch=train.micro_batch_size,
        )

    def counts(self, batches: list[list[int]]) -> dict[str, float]:
        rows, packed = [r for batch in batches for r in batch], self.data.train
        return {
            "targets": int(packed.row_targets[rows].sum()),
            "tokens": int(packed.row_tokens[rows].sum()),
        }

    def loss(self, engine, batch: list[int]) -> MicroLoss:
        packed, device = self.data.train, self.dist.device
        ids, pos, tgt = (
            t[batch].to(device, non_blocking=True)
            for t in (packed.input_ids, packed.position_ids, packed.targets)
        )
        return MicroLoss(lm_loss.token_loss_sum(engine, ids, pos, tgt))

    def flops(self, counts: dict[str, float]) -> float:
        return self.flops_per_token * counts["tokens"]

    def eval_sums(self, run: Run) -> dict[str, float]:
        train, dist = self.cfg.train, self.dist
        total, count = lm_loss.eval_loss(
            self.model,
            self.data.eval,
            batch_size=train.micro_batch_size,
            max_batches=train.eval_batches,
            device=dist.device,
            autocast=run.autocast,
            rows=list(range(dist.rank, len(self.data.eval.input_ids), dist.world_size)),
        )
        return {"loss": total, "targets": count}

    def start(self, run: Run, *, resumed: bool) -> None:
        if not resumed:
            self._exact_match(run)  # the untrained baseline

    def finish(self, run: Run) -> None:
        self._exact_match(run)

    def _exact_match(self, run: Run) -> None:
        train = self.cfg.train
        if not train.exact_match_examples or not self.dist.is_main:
            return
        records = self.data.eval_records[: train.exact_match_examples]
        score, _ = evaluate.exact_match(
            self.model,
            self.data.tokenizer,
            records,
            max_new_tokens=train.max_new_tokens,
            device=self.dist.device,
        )
        run.history.setdefault("eval/initial_exact_match", score)
        run.log({"eval/exact_match": score})
        log(f"step {run.step} exact match {score:.3f} on {len(records)} held-out prompts")

    def metadata(self, run: Run) -> dict:
        data = self.data
        return {
            "dataset": {
                "fingerprint": data.fingerprint,
                "skipped_records": data.skipped_records,
                "duplicates_removed": data.duplicates_removed,
                "train_rows": len(data.train.input_ids),
                "eval_rows": len(data.eval.input_ids),
                "pack": dataclasses.asdict(data.train.stats),
            }
        }

    def write_model_dir(self, local: str) -> None:
        lora = self.cfg.lora
        save_trained(self.model, self.data.tokenizer, local, merge=lora.enabled and lora.merge)
