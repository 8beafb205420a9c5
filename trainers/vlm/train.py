"""The VLM training task that the one training loop (trainers.common.loop) drives: image-text
micro-batches from DataLoader workers, DDP over the trained parameters only, checkpoints of the
trained weights only, eval loss, and VQA exact match against the question-prior chance level.

    from trainers.vlm.presets import debug
    metadata = train(debug())
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainers.common import loop, speed
from trainers.common.distributed import Dist
from trainers.common.logs import log
from trainers.common.packing import IGNORE
from trainers.common.records import DataError
from trainers.common.task import MicroLoss, PartlyFrozenTask, Run
from trainers.vlm import evaluate
from trainers.vlm.batches import StepBatches, vqa_items
from trainers.vlm.config import VLMConfig
from trainers.vlm.data import load_data, load_records, make_loader, make_tokenizer
from trainers.vlm.model import add_lora, build_model, count_by_part, num_image_tokens, save_trained


def train(cfg: VLMConfig, *, callbacks: Sequence[loop.StepCallback] = ()) -> dict:
    """Train, save the model and metadata, and return the metadata (on every rank)."""
    return loop.train(cfg, VLMTask, callbacks=callbacks)


def use_static_graph(cfg: VLMConfig, dist: Dist) -> bool:
    """static_graph only without gradient accumulation: in torch 2.13, static_graph with
    no_sync() fails its first backward on an internal assert and, once past that, stops
    all-reducing gradients (pytorch/pytorch#143580, fix pending in #187732)."""
    micro_steps = cfg.train.global_batch_size // (cfg.train.micro_batch_size * dist.world_size)
    return cfg.ddp.static_graph and micro_steps == 1


class VLMTask(PartlyFrozenTask):
    rates = ("images", "tokens")
    totals = {
        "tokens": "train/tokens_seen",
        "images": "train/images_seen",
        "skipped": "data/skipped_images",
    }

    def __init__(self, cfg: VLMConfig, dist: Dist) -> None:
        self.cfg, self.dist = cfg, dist
        records = load_records(cfg)
        tokenizer = make_tokenizer(cfg, records[0].train_records)
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and resume
        model, self.spec = build_model(cfg, tokenizer=tokenizer)
        self.num_image_tokens = num_image_tokens(model)
        if cfg.lora.enabled:
            model = add_lora(model, cfg)
        self.model = model.to(dist.device).train()
        self.data = load_data(
            cfg, tokenizer=tokenizer, num_image_tokens=self.num_image_tokens, records=records
        )
        self.train_records = self.data.train_records
        self.parameters = count_by_part(self.model)
        self.batches = StepBatches(self.data, self.spec, cfg=cfg, dist=dist)
        self.compile = cfg.language.compile

    def ddp_options(self, dist: Dist) -> dict:
        # Frozen towers have requires_grad=False, so DDP neither buckets nor all-reduces them:
        # no find_unused_parameters search is needed, and static_graph is valid.
        return {
            "gradient_as_bucket_view": self.cfg.ddp.gradient_as_bucket_view,
            "static_graph": use_static_graph(self.cfg, dist),
        }

    def micro_batches(self, step: int) -> list:
        return self.batches.for_step(step)

    def counts(self, batches: list) -> dict[str, float]:
        return {
            "targets": sum(int((b.targets != IGNORE).sum()) for b in batches),
            "tokens": sum(b.num_tokens for b in batches),
            "images": sum(b.num_images for b in batches),
            "skipped": sum(len(b.errors) for b in batches),
            "positions": sum(b.input_ids.numel() for b in batches),  # padding included
        }

    def check_step(self, counts: dict[str, float], batches: list) -> None:
        if counts["skipped"] and self.cfg.data.on_bad_record == "error":
            # Every rank stops here together, rather than the others waiting on a dead peer.
            errors = [e for b in batches for e in b.errors] or [
                "stopped: another rank read an unreadable image"
            ]
            raise DataError(errors[0])

    def loss(self, engine, batch) -> MicroLoss:
        loss, _ = evaluate.token_loss_sum(engine, batch, self.dist.device)
        return MicroLoss(loss)

    def flops(self, counts: dict[str, float]) -> float:
        """The language model per token (6N trained, 4N frozen: the backward still runs
        through it), the vision tower per image patch (2N when frozen: nothing before it needs
        gradients, so it runs forward only)."""
        tokens, images = counts["tokens"], counts["images"]
        llava = self.model.base_model.model if hasattr(self.model, "peft_config") else self.model
        vision = sum(p.numel() for p in llava.model.vision_tower.parameters())
        trained_vision, text = self.parameters["vision"], llava.config.text_config
        per_token = speed.flops_per_token(
            num_params=self.parameters["total"] - vision,
            num_trainable=self.parameters["trainable"] - trained_vision,
            num_layers=text.num_hidden_layers,
            hidden_size=text.hidden_size,
            seq_len=max(1, int(tokens // max(1, images))),
        )
        per_patch = (6 if trained_vision else 2) * vision
        return per_token * tokens + per_patch * self.num_image_tokens * images

    def eval_sums(self, run: Run) -> dict[str, float]:
        dist = self.dist
        loader = make_loader(
            self.data.eval[dist.rank :: dist.world_size],
            self.spec,
            pad_id=self.data.tokenizer.pad_token_id,
            batch_size=self.cfg.train.micro_batch_size,
            num_workers=0,
            pin_memory=dist.device.startswith("cuda"),
        )
        total, count, skipped = evaluate.eval_loss(
            self.model,
            loader,
            device=dist.device,
            autocast=run.autocast,
            on_bad=self.cfg.data.on_bad_record,
            max_batches=self.cfg.train.eval_batches,
        )
        return {"loss": total, "targets": count, "data/skipped_eval_images": skipped}

    def finish(self, run: Run) -> None:
        cfg = self.cfg
        if not cfg.train.exact_match_examples or not self.dist.is_main:
            return
        items, _ = vqa_items(
            self.data.eval_located,
            self.spec,
            on_bad=cfg.data.on_bad_record,
            limit=cfg.train.exact_match_examples,
        )
        score, _ = evaluate.exact_match(
            self.model,
            self.data.tokenizer,
            items,
            num_image_tokens=self.num_image_tokens,
            max_new_tokens=cfg.train.max_new_tokens,
            device=self.dist.device,
        )
        chance = evaluate.chance_exact_match(self.data.train_records, self.data.eval_records)
        run.log({"eval/vqa_exact_match": score, "eval/chance_exact_match": chance})
        log(
            f"step {run.step} VQA exact match {score:.3f} on {len(items)} held-out questions "
            f"(question-prior chance {chance:.3f})"
        )

    def metadata(self, run: Run) -> dict:
        data = self.data
        return {
            "num_image_tokens": self.num_image_tokens,
            "parameters": dict(self.parameters),
            "dataset": {
                "fingerprint": data.fingerprint,
                "skipped_records": data.skipped_records,
                "skipped_images": run.totals["skipped_images"],
                "duplicates_removed": data.duplicates_removed,
                "dropped_examples": data.dropped_examples,
                "train_examples": len(data.train),
                "eval_examples": len(data.eval),
            },
        }

    def write_model_dir(self, local: str) -> None:
        save_trained(self.model, self.data.tokenizer, self.spec, local)

    def close(self) -> None:
        self.batches.close()
