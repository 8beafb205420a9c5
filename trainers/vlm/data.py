"""Everything the VLM trainer reads: records, the tokenizer, token examples, and DataLoaders that
decode and resize images in worker processes.

    data = load_data(cfg, num_image_tokens=16)
    loader = train_loader(data, spec, sampler=..., micro_batch=8, ...)

A bad record (schema) or bad image (missing, unreadable) stops the run with an error naming the
record's file and line, or with `data.on_bad_record=skip` is dropped and counted. Schema errors
are found when records are read; image errors only when a worker decodes the image, so those
are counted as they happen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from trainers.common.packing import IGNORE
from trainers.common.prepared import records_uri
from trainers.common.records import (
    SYNTHETIC,
    DataError,
    Split,
    base_dir,
    fingerprint,
    load_split,
    read_located_records,
)
from trainers.lm.model import tokenizer_from
from trainers.lm.tokenizer import train_tokenizer
from trainers.vlm import examples as ex
from trainers.vlm.config import IMAGE_TOKEN, VLMConfig
from trainers.vlm.images import ImageError, ImageSpec, load_pixels
from trainers.vlm.synthetic import shapes_records


@dataclass
class VLMData:
    tokenizer: object
    train: list[ex.VLMExample]
    eval: list[ex.VLMExample]
    train_records: list[dict]
    eval_located: list[tuple[str, dict]]  # for generation-based metrics
    fingerprint: str
    skipped_records: int
    duplicates_removed: int
    dropped_examples: int  # nothing left to learn after truncation

    @property
    def eval_records(self) -> list[dict]:
        return [record for _, record in self.eval_located]


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, L], right-padded
    attention_mask: torch.Tensor  # [B, L]
    targets: torch.Tensor  # [B, L], IGNORE on prompt, image and padding positions
    pixel_values: torch.Tensor  # [B, 3, S, S]; zeros for an unreadable image
    readable: torch.Tensor  # [B] bool: the image was read (the row trains)
    errors: list[str]  # "where: problem" of examples whose image could not be read

    @property
    def num_images(self) -> int:
        return int(self.readable.sum())

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask[self.readable].sum())

    def pin_memory(self) -> Batch:  # DataLoader's pin_memory calls this on custom batches
        for name in ("input_ids", "attention_mask", "targets", "pixel_values", "readable"):
            setattr(self, name, getattr(self, name).pin_memory())
        return self


def read(uri: str, *, on_bad: str) -> tuple[list[tuple[str, dict]], int]:
    """(records as written with where each is, skipped) from JSONL/Parquet or a prepared split."""
    return read_located_records(records_uri(uri), validate=ex.check_record, on_bad=on_bad)


def load_records(cfg: VLMConfig) -> tuple[Split, int]:
    """(train and eval records, skipped count) from the configured sources."""
    data = cfg.data
    return load_split(
        records_uri(data.train),
        records_uri(data.eval),
        validate=ex.check_record,
        on_bad=data.on_bad_record,
        eval_fraction=data.eval_fraction,
        synthetic=lambda: shapes_records(
            data.synthetic_examples, seed=cfg.train.seed, image_size=cfg.vision.image_size
        ),
    )


def make_tokenizer(cfg: VLMConfig, records: list[dict]):
    """The language model's tokenizer (or one trained on the texts) plus the image token."""
    if cfg.language.tokenizer == "trained":
        texts = [cfg.data.caption_prompt]
        for r in records:
            texts += [ex.prompt_text(r, caption_prompt=cfg.data.caption_prompt), ex.answer_text(r)]
        tokenizer = train_tokenizer(texts, vocab_size=cfg.language.vocab_size)
    else:
        field = "language.tokenizer" if cfg.language.tokenizer else "language.source"
        tokenizer = tokenizer_from(cfg.language.tokenizer or cfg.language.source, field=field)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return tokenizer


def tokenize_all(tokenizer, located, cfg: VLMConfig, *, num_image_tokens: int):
    """(examples, how many were dropped with nothing left to learn after truncation)."""
    examples = tokenize_all_with(
        tokenizer,
        located,
        num_image_tokens=num_image_tokens,
        caption_prompt=cfg.data.caption_prompt,
        max_text_tokens=cfg.data.max_text_tokens,
        mask_prompt=cfg.data.mask_prompt,
    )
    return examples, len(located) - len(examples)


def tokenize_all_with(
    tokenizer,
    located,
    *,
    num_image_tokens: int,
    caption_prompt: str,
    max_text_tokens: int = 4096,
    mask_prompt: bool = True,
) -> list[ex.VLMExample]:
    examples = [
        ex.tokenize(
            tokenizer,
            record,
            where=where,
            num_image_tokens=num_image_tokens,
            caption_prompt=caption_prompt,
            max_text_tokens=max_text_tokens,
            mask_prompt=mask_prompt,
        )
        for where, record in located
    ]
    return [e for e in examples if e is not None]


def load_data(cfg: VLMConfig, *, tokenizer, num_image_tokens: int, records=None) -> VLMData:
    split, skipped = records or load_records(cfg)
    train_examples, dropped = tokenize_all(
        tokenizer, split.train, cfg, num_image_tokens=num_image_tokens
    )
    eval_examples, more = tokenize_all(
        tokenizer, split.eval, cfg, num_image_tokens=num_image_tokens
    )
    if not train_examples:
        raise DataError(f"{cfg.data.train or SYNTHETIC}: no example has a target to learn")
    return VLMData(
        tokenizer=tokenizer,
        train=train_examples,
        eval=eval_examples,
        train_records=split.train_records,
        eval_located=split.eval,
        fingerprint=fingerprint(split.train_records),
        skipped_records=skipped,
        duplicates_removed=split.duplicates_removed,
        dropped_examples=dropped + more,
    )


class ImageTextDataset(torch.utils.data.Dataset):
    """Token examples whose images are read, decoded and resized when an item is fetched, so in
    the DataLoader's worker processes."""

    def __init__(self, examples: list[ex.VLMExample], spec: ImageSpec) -> None:
        self.examples, self.spec = examples, spec

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        example = self.examples[index]
        try:
            pixels = load_pixels(example.image, base_dir=base_dir(example.where), spec=self.spec)
            error = None
        except ImageError as err:
            pixels, error = None, f"{example.where}: {err}"
        return {"example": example, "pixels": pixels, "error": error}


def collate(items: list[dict], *, pad_id: int, spec: ImageSpec) -> Batch:
    """Right-pad a micro-batch. A row whose image could not be read stays, with zero pixels
    and no targets: shapes stay fixed, so every DDP rank still runs its forward and backward."""
    length = max(len(i["example"].input_ids) for i in items)
    ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    targets = torch.full((len(items), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), length), dtype=torch.long)
    pixels = torch.zeros((len(items), 3, spec.size, spec.size))
    readable = torch.tensor([i["error"] is None for i in items])
    for row, item in enumerate(items):
        example = item["example"]
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        if item["error"] is None:
            targets[row, :n] = torch.tensor(example.targets)
            pixels[row] = item["pixels"]
    return Batch(ids, mask, targets, pixels, readable, [i["error"] for i in items if i["error"]])


def make_loader(
    examples: list[ex.VLMExample],
    spec: ImageSpec,
    *,
    pad_id: int,
    batch_size: int,
    sampler=None,
    num_workers: int,
    pin_memory: bool,
) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        ImageTextDataset(examples, spec),
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=functools.partial(collate, pad_id=pad_id, spec=spec),
        # Workers live for one epoch; each rank re-creates its loader when the epoch changes.
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )


def check_batch_errors(batch: Batch, *, on_bad: str) -> int:
    """Raise on an unreadable image in error mode; else the number skipped in this batch."""
    if batch.errors and on_bad == "error":
        raise DataError(batch.errors[0])
    return len(batch.errors)
