"""Exact match of greedy generations against reference answers (token loss and perplexity are in
trainers.lm.loss). Used by the trainer and the pipeline's evaluate step.
"""

from __future__ import annotations

from trainers.lm.chat import prompt_and_answer, render_prompt
from trainers.lm.generation import generate


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
