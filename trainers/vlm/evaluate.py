"""Evaluation of a VLM: token loss (over VQA answers and captions apart), VQA exact match of
greedy answers, and the question-prior baseline it must beat. Used by the trainer and the
pipeline's evaluate step.

    result = evaluate_model("out/model", "out/eval", max_examples=128)   # an Evaluation
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict

import torch
import torch.nn.functional as F
from PIL import Image

from trainers.common.packing import IGNORE
from trainers.common.steps import Evaluation
from trainers.lm.generation import sampling_kwargs
from trainers.vlm import examples as ex

SAMPLE_COLUMNS = ["image", "question", "reference", "output", "correct"]


def token_loss_sum(model, batch, device: str) -> tuple[torch.Tensor, int]:
    """(summed cross-entropy of the targeted positions, their count) for one `data.Batch`."""
    logits = model(
        input_ids=batch.input_ids.to(device, non_blocking=True),
        attention_mask=batch.attention_mask.to(device, non_blocking=True),
        pixel_values=batch.pixel_values.to(device, non_blocking=True),
    ).logits
    targets = batch.targets.to(device, non_blocking=True)
    loss = F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return loss, int((batch.targets != IGNORE).sum())


@torch.no_grad()
def eval_loss(
    model, loader, *, device: str, autocast: bool, on_bad: str, max_batches: int = 0
) -> tuple[float, int, int]:
    """(summed loss, target tokens, unreadable images skipped) over the loader's batches (at
    most `max_batches`); an unreadable image raises DataError unless `on_bad` is "skip"."""
    from trainers.vlm.data import check_batch_errors

    was_training = model.training
    model.eval()
    total, count, skipped = 0.0, 0, 0
    for i, batch in enumerate(loader):
        if max_batches and i >= max_batches:
            break
        skipped += check_batch_errors(batch, on_bad=on_bad)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss, n = token_loss_sum(model, batch, device)
        total, count = total + float(loss), count + n
    model.train(was_training)
    return total, count, skipped


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    pixel_values: torch.Tensor,
    questions: list[str],
    *,
    num_image_tokens: int,
    max_new_tokens: int,
    device: str,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> list[str]:
    """Greedy (or sampled) answers to one question per image, generated as one batch."""
    was_training = model.training
    model.eval()
    prompts = [ex.prompt_ids(tokenizer, q, num_image_tokens=num_image_tokens) for q in questions]
    length = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):  # left-padded, so every answer starts at `length`
        ids[row, length - len(prompt) :] = torch.tensor(prompt)
        mask[row, length - len(prompt) :] = 1
    sampling = sampling_kwargs(temperature=temperature, top_p=top_p)
    out = model.generate(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        pixel_values=pixel_values.to(device, dtype=model.dtype),
        max_new_tokens=max_new_tokens,
        use_cache=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sampling,
    )
    model.train(was_training)
    return [t.strip() for t in tokenizer.batch_decode(out[:, length:], skip_special_tokens=True)]


def exact_match(
    model,
    tokenizer,
    items: list,
    *,
    num_image_tokens: int,
    max_new_tokens: int,
    device: str,
    batch_size: int = 64,
) -> tuple[float, list[dict]]:
    """Share of VQA items (`batches.VQAItem`) answered exactly (trimmed), and the samples."""
    samples = []
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        answers = generate_answers(
            model,
            tokenizer,
            torch.stack([item.pixels for item in chunk]),
            [item.record["question"] for item in chunk],
            num_image_tokens=num_image_tokens,
            max_new_tokens=max_new_tokens,
            device=device,
        )
        samples += [
            {
                "question": r["question"],
                "reference": r["answer"],
                "output": out,
                "correct": out == r["answer"].strip(),
            }
            for r, out in zip([item.record for item in chunk], answers, strict=True)
        ]
    return sum(s["correct"] for s in samples) / max(1, len(samples)), samples


def chance_exact_match(train_records: list[dict], eval_records: list[dict]) -> float:
    """The eval score of answering each question with its most common training answer: what a
    model that ignores the image can reach, so the bar a VLM must clear."""
    by_question: dict[str, Counter] = defaultdict(Counter)
    for r in train_records:
        if ex.is_vqa(r):
            by_question[r["question"].strip()][r["answer"].strip()] += 1
    guesses = {q: c.most_common(1)[0][0] for q, c in by_question.items()}
    vqa = [r for r in eval_records if ex.is_vqa(r)]
    hits = sum(guesses.get(r["question"].strip()) == r["answer"].strip() for r in vqa)
    return hits / len(vqa) if vqa else 0.0


def evaluate_model(
    model_uri: str,
    eval_dir: str,
    *,
    max_examples: int = 128,
    max_new_tokens: int = 16,
    train_records_uri: str = "",
    on_bad_record: str = "error",
    caption_prompt: str = "Describe the image.",
) -> Evaluation:
    """The pipeline's evaluation of a trained model on image-text records (a prepared split or
    a records file): VQA exact match on up to `max_examples` questions, token loss on VQA
    answers and on captions (all of them; a kind the split lacks has no loss), the
    question-prior chance level when the training records are given, and the samples with
    their images."""
    from trainers.vlm.batches import vqa_items
    from trainers.vlm.data import read
    from trainers.vlm.model import load_trained

    loaded = load_trained(model_uri)
    located, _ = read(eval_dir, on_bad=on_bad_record)
    metrics = _losses(loaded, located, caption_prompt=caption_prompt, on_bad=on_bad_record)
    items, _ = vqa_items(located, loaded.image, limit=max_examples, on_bad=on_bad_record)
    metrics["vqa_exact_match"], samples = exact_match(
        loaded.model,
        loaded.tokenizer,
        items,
        num_image_tokens=loaded.num_image_tokens,
        max_new_tokens=max_new_tokens,
        device=str(loaded.model.device),
    )
    if train_records_uri:
        train = [r for _, r in read(train_records_uri, on_bad="skip")[0]]
        metrics["chance_exact_match"] = chance_exact_match(train, [r for _, r in located])
    for sample, item in zip(samples, items, strict=True):
        sample["image"] = Image.open(io.BytesIO(item.image)).convert("RGB")
    return Evaluation(metrics=metrics, samples=samples, columns=SAMPLE_COLUMNS)


def _losses(loaded, located, *, caption_prompt: str, on_bad: str) -> dict[str, float]:
    """vqa_loss, caption_loss (of the kinds present), their example counts, and eval_loss."""
    metrics = {}
    for kind, wanted in (("vqa", True), ("caption", False)):
        subset = [(w, r) for w, r in located if ex.is_vqa(r) == wanted]
        loss, count = _loss(loaded, subset, caption_prompt=caption_prompt, on_bad=on_bad)
        metrics[f"{kind}_examples"] = float(count)
        if count:  # a loss over no examples is not a metric
            metrics[f"{kind}_loss"] = loss
    kinds = [k for k in ("vqa", "caption") if f"{k}_loss" in metrics]
    parts = [(metrics[f"{k}_loss"], metrics[f"{k}_examples"]) for k in kinds]
    if parts:  # weighted by example count
        metrics["eval_loss"] = sum(loss * n for loss, n in parts) / sum(n for _, n in parts)
    return metrics


def _loss(
    loaded, located: list[tuple[str, dict]], *, caption_prompt: str, on_bad: str
) -> tuple[float, int]:
    """Mean token loss of the answers (or captions) of `located`, and the example count."""
    from trainers.vlm.data import make_loader, tokenize_all_with

    examples = tokenize_all_with(
        loaded.tokenizer,
        located,
        num_image_tokens=loaded.num_image_tokens,
        caption_prompt=caption_prompt,
    )
    loader = make_loader(
        examples,
        loaded.image,
        pad_id=loaded.tokenizer.pad_token_id,
        batch_size=16,
        num_workers=0,
        pin_memory=False,
    )
    device = str(loaded.model.device)
    total, count, _ = eval_loss(loaded.model, loader, device=device, autocast=False, on_bad=on_bad)
    return (total / count if count else float("nan")), len(examples)
