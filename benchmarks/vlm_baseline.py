"""The plain Hugging Face-style VLM loop that benchmarks/vlm_trainer.py measures liftoff against.

    steps = baseline_steps(cfg, data=task.data, spec=task.spec, num_image_tokens=64,
                           device="cpu", autocast=False, num_steps=150)  # yields a Step each

What a typical HF fine-tuning tutorial writes: a DataLoader with no workers whose collate_fn
decodes each image with PIL, runs the HF image processor (SiglipImageProcessor built from the
trainer's ImageSpec), renders the chat template with the image token expanded (as
LlavaProcessor does), tokenizes with padding to max_length and masks the prompt in the labels;
then `model(**inputs, labels=labels).loss` (HF's mean loss), `(loss / accumulation).backward()`,
gradient clipping, and AdamW over `model.parameters()`: every parameter, the vision tower
included, because the naive loop never freezes it. The model is the trainer's own
`build_model` after the same seed, so it starts from the same weights.

Also home of `Step`, one optimizer step as either side measured it.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from PIL import Image

from trainers.common.packing import IGNORE
from trainers.lm.chat import render_prompt
from trainers.vlm import examples as ex
from trainers.vlm.config import IMAGE_TOKEN, VLMConfig
from trainers.vlm.images import ImageSpec, read_image_bytes
from trainers.vlm.model import build_model


@dataclass
class Step:
    """One optimizer step: how long it took, what it consumed, what it reported."""

    seconds: float  # wall time from the step's start to its end (device synchronised)
    cpu_seconds: float  # CPU time of this process's threads meanwhile (workers excluded)
    data_seconds: float  # spent making (baseline) or waiting for (liftoff) its batches
    images: int
    tokens: int  # non-padding tokens, image placeholders included
    positions: int  # token positions computed, padding included
    loss: float  # the step's training loss as the side computes it


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def finish_step(device: str, started: tuple[float, float], **counts) -> Step:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)  # queued kernels belong to this step's time
    wall, cpu = clocks()
    return Step(seconds=wall - started[0], cpu_seconds=cpu - started[1], **counts)


def image_processor(spec: ImageSpec):
    """The HF processor a tutorial would load, configured with the trainer's own spec."""
    from transformers.utils import logging

    # Without torchvision, transformers resolves the name to its PIL backend (the pre-v5 "slow"
    # processor) and warns about that at import.
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        from transformers import SiglipImageProcessor
    finally:
        logging.set_verbosity(verbosity)
    return SiglipImageProcessor(**spec.to_dict())


def hf_collate(
    records: list[dict],
    *,
    processor,
    tokenizer,
    num_image_tokens: int,
    max_length: int,
    caption_prompt: str,
) -> tuple[dict, torch.Tensor]:
    """(model inputs, labels) for a batch of records, all made in the calling process."""
    images = [
        Image.open(io.BytesIO(read_image_bytes(r["image"], base_dir="."))).convert("RGB")
        for r in records
    ]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    expand = IMAGE_TOKEN * num_image_tokens
    users = [ex.user_turn(ex.prompt_text(r, caption_prompt=caption_prompt)) for r in records]
    texts = [
        tokenizer.apply_chat_template(
            [user, {"role": "assistant", "content": ex.answer_text(r)}], tokenize=False
        ).replace(IMAGE_TOKEN, expand)
        for user, r in zip(users, records, strict=True)
    ]
    prompts = [render_prompt(tokenizer, [user]).replace(IMAGE_TOKEN, expand) for user in users]
    encoded = tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=max_length,
        add_special_tokens=False,
        return_tensors="pt",
    )
    labels = encoded["input_ids"].clone()
    labels[encoded["attention_mask"] == 0] = IGNORE
    for row, prompt in enumerate(tokenizer(prompts, add_special_tokens=False)["input_ids"]):
        labels[row, : len(prompt)] = IGNORE  # learn the answer only
    inputs = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "pixel_values": pixel_values,
    }
    return inputs, labels


def max_length(cfg: VLMConfig, *, num_image_tokens: int) -> int:
    # The trainer cuts text to max_text_tokens (the one <image> among them), then expands it.
    return cfg.data.max_text_tokens - 1 + num_image_tokens


def check_same_inputs(cfg: VLMConfig, *, data, spec: ImageSpec, num_image_tokens: int) -> None:
    """The baseline's first micro-batch is the trainer's, token for token and pixel for pixel
    (up to the baseline's extra padding), so the two sides differ in how, not in what."""
    from trainers.vlm.data import ImageTextDataset, collate

    if data.dropped_examples:  # examples and records no longer line up by index
        return
    count = cfg.train.micro_batch_size
    dataset = ImageTextDataset(data.train, spec)
    ours = collate(
        [dataset[i] for i in range(count)], pad_id=data.tokenizer.pad_token_id, spec=spec
    )
    inputs, labels = hf_collate(
        data.train_records[:count],
        processor=image_processor(spec),
        tokenizer=data.tokenizer,
        num_image_tokens=num_image_tokens,
        max_length=max_length(cfg, num_image_tokens=num_image_tokens),
        caption_prompt=cfg.data.caption_prompt,
    )
    n = ours.input_ids.shape[1]
    assert torch.equal(inputs["input_ids"][:, :n], ours.input_ids), "token ids differ"
    assert torch.equal(labels[:, 1:n], ours.targets[:, :-1]), "loss targets differ"  # HF shifts
    assert not inputs["attention_mask"][:, n:].any(), "the baseline has longer examples"
    assert torch.allclose(inputs["pixel_values"], ours.pixel_values, atol=1e-5), "pixels differ"


def build_baseline(cfg: VLMConfig, *, tokenizer, device: str, num_steps: int):
    """(model, optimizer, scheduler): the trainer's model and seed, everything trainable."""
    from transformers import get_cosine_schedule_with_warmup

    torch.manual_seed(cfg.train.seed)  # the initial weights the trainer's model gets
    model, _ = build_model(cfg, tokenizer=tokenizer)
    model.requires_grad_(True)  # the naive loop trains whatever the model holds
    model.to(device).train()
    opt = cfg.optim
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=opt.lr,
        weight_decay=opt.weight_decay,
        betas=(opt.beta1, opt.beta2),
        eps=opt.eps,
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=opt.warmup_steps, num_training_steps=num_steps
    )
    return model, optimizer, scheduler


def baseline_loader(records: list[dict], cfg: VLMConfig, *, tokenizer, spec, num_image_tokens):
    collate = functools.partial(
        hf_collate,
        processor=image_processor(spec),
        tokenizer=tokenizer,
        num_image_tokens=num_image_tokens,
        max_length=max_length(cfg, num_image_tokens=num_image_tokens),
        caption_prompt=cfg.data.caption_prompt,
    )
    return torch.utils.data.DataLoader(
        records,
        batch_size=cfg.train.micro_batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg.train.seed),
        collate_fn=collate,
        num_workers=0,
        drop_last=True,
    )


def baseline_steps(
    cfg: VLMConfig,
    *,
    data,
    spec: ImageSpec,
    num_image_tokens: int,
    device: str,
    autocast: bool,
    num_steps: int,
) -> Iterator[Step]:
    """Train `num_steps` optimizer steps of cfg's global batch, yielding each as it ends."""
    model, optimizer, scheduler = build_baseline(
        cfg, tokenizer=data.tokenizer, device=device, num_steps=num_steps
    )
    loader = baseline_loader(
        data.train_records,
        cfg,
        tokenizer=data.tokenizer,
        spec=spec,
        num_image_tokens=num_image_tokens,
    )
    accumulation = cfg.train.global_batch_size // cfg.train.micro_batch_size
    batches = iter(loader)
    for _ in range(num_steps):
        started = clocks()
        counts = dict.fromkeys(("data_seconds", "images", "tokens", "positions", "loss"), 0)
        for _ in range(accumulation):
            fetching = time.perf_counter()
            try:
                inputs, labels = next(batches)
            except StopIteration:  # a new epoch, as `for epoch in range(...)` would start
                batches = iter(loader)
                inputs, labels = next(batches)
            counts["data_seconds"] += time.perf_counter() - fetching
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = model(**inputs, labels=labels.to(device)).loss
            (loss / accumulation).backward()
            counts["loss"] += loss.item() / accumulation
            counts["images"] += len(inputs["pixel_values"])
            counts["tokens"] += int(inputs["attention_mask"].sum())
            counts["positions"] += inputs["input_ids"].numel()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or float("inf"))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        yield finish_step(device, started, **counts)
