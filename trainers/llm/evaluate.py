"""Evaluation of a fine-tuned LM: token loss and perplexity on a prepared eval split, and exact
match of greedy answers against the references. Used by the trainer (exact match) and the
pipeline's evaluate step (`evaluate_model`).

    result = evaluate_model("out/model", "out/eval", max_examples=128, max_new_tokens=32)
    result.metrics["exact_match"], result.samples[0]["output"]
"""

from __future__ import annotations

import tempfile

from trainers.common.speed import perplexity
from trainers.common.steps import Evaluation
from trainers.lm.chat import prompt_and_answer, render_prompt
from trainers.lm.generation import generate

SAMPLE_COLUMNS = ["prompt", "reference", "output", "correct"]


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


def evaluate_model(
    model_uri: str, eval_dir: str, *, max_examples: int, max_new_tokens: int
) -> Evaluation:
    """The trained model at `model_uri` on the prepared eval split at `eval_dir`: token loss
    and perplexity over the whole split, exact match on its first `max_examples` records."""
    from trainers.llm import prepared
    from trainers.lm import loss as lm_loss
    from trainers.lm.model import load_trained

    model, tokenizer = load_trained(model_uri)
    device = str(model.device)
    with tempfile.TemporaryDirectory(prefix="liftoff-eval-") as local:
        split = prepared.load(eval_dir, local_dir=local)
    total, count = lm_loss.eval_loss(
        model, split.packed, batch_size=8, max_batches=0, device=device, autocast=False
    )
    loss = total / max(1, count)
    records = split.records[:max_examples]
    score, samples = exact_match(
        model, tokenizer, records, max_new_tokens=max_new_tokens, device=device
    )
    metrics = {
        "eval_loss": loss,
        "perplexity": perplexity(loss),
        "exact_match": score,
        "eval_examples": float(len(records)),
    }
    return Evaluation(metrics=metrics, samples=samples, columns=SAMPLE_COLUMNS)
