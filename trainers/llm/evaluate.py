"""Evaluation of a causal LM: token loss and perplexity on packed rows, and exact match of greedy
generations against reference answers. Used by the trainer and the pipeline's evaluate step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainers.common.packing import IGNORE, Packed
from trainers.llm.chat import prompt_and_answer, render_prompt


def token_loss_sum(model, input_ids, position_ids, targets) -> torch.Tensor:
    """Summed cross-entropy of the targeted positions (packed rows: no attention mask needed)."""
    logits = model(input_ids=input_ids, position_ids=position_ids).logits
    return F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )


@torch.no_grad()
def eval_loss(
    model,
    packed: Packed,
    *,
    batch_size: int,
    max_batches: int,
    device: str,
    autocast: bool,
    rows: list[int] | None = None,
) -> tuple[float, int]:
    """(summed loss, target tokens) over `rows` (default: all), at most `max_batches` batches."""
    was_training = model.training
    model.eval()
    rows = list(range(len(packed.input_ids))) if rows is None else rows
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    total, count = 0.0, 0
    for batch in batches[: max_batches or None]:
        ids, pos, tgt = (
            t[batch].to(device) for t in (packed.input_ids, packed.position_ids, packed.targets)
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            total += float(token_loss_sum(model, ids, pos, tgt))
        count += int((tgt != IGNORE).sum())
    model.train(was_training)
    return total, count


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int,
    device: str,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> list[str]:
    """Completions of already-rendered prompts, generated as one left-padded batch."""
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    sampling = sampling_kwargs(temperature=temperature, top_p=top_p)
    out = model.generate(
        **batch.to(device),
        max_new_tokens=max_new_tokens,
        use_cache=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    model.train(was_training)
    new_tokens = out[:, batch["input_ids"].shape[1] :]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def sampling_kwargs(*, temperature: float, top_p: float) -> dict:
    """`generate` arguments: greedy at temperature 0, else nucleus sampling."""
    if temperature > 0:
        return {"do_sample": True, "temperature": temperature, "top_p": top_p}
    return {"do_sample": False}


def exact_match(
    model, tokenizer, records: list[dict], *, max_new_tokens: int, device: str, batch_size: int = 64
) -> tuple[float, list[dict]]:
    """Share of records whose greedy answer equals the reference (trimmed), and the samples."""
    samples = []
    for i in range(0, len(records), batch_size):
        chunk = [prompt_and_answer(r) for r in records[i : i + batch_size]]
        prompts = [render_prompt(tokenizer, messages) for messages, _ in chunk]
        outputs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, device=device)
        samples += [
            {
                "prompt": m[-1]["content"],
                "reference": ref,
                "output": out.strip(),
                "correct": out.strip() == ref.strip(),
            }
            for (m, ref), out in zip(chunk, outputs, strict=True)
        ]
    return sum(s["correct"] for s in samples) / max(1, len(samples)), samples
