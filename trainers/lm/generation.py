"""Generation from a causal LM: already-rendered prompts as one left-padded batch."""

from __future__ import annotations

import torch


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
