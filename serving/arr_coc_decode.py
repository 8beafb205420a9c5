"""ARR-COC's answers: each image's top-K cells by relevance, then the LM over the kept tokens,
one new token at a time.

    answers, kept = answer(model, examples, num_keep=[16, 8], tokenizer=tok, params=params,
                           device="cpu")      # ["red", "blue"], [tensor([...16 cells]), ...]

`examples` are prompts without answers (`trainers.arr_coc.inputs.encode`). The relevance
scores depend on the image and the question only, so the cells are chosen once; the vision
tower runs once too. Each step then runs the LM over the cut sequence (the kept visual tokens
with their own positions, `trainers.arr_coc.selection`) and what each row has generated so
far, and stops a row at the end-of-turn token. No KV cache: Qwen3-VL's cache keeps position
offsets computed from the full image grid, which a cut sequence does not have; recomputing is
exact, and costs little at the answers' lengths.
"""

from __future__ import annotations

import dataclasses

import torch

from trainers.arr_coc import selection
from trainers.arr_coc.allocation import top_k
from trainers.arr_coc.inputs import Batch, Example, collate
from trainers.arr_coc.model import ArrCoc
from trainers.common.packing import IGNORE


@torch.no_grad()
def answer(
    model: ArrCoc, examples: list[Example], *, num_keep: list[int], tokenizer, params, device: str
) -> tuple[list[str], list[torch.Tensor]]:
    """(answers, kept cells per example, ascending) with `params`' max_new_tokens,
    temperature and top_p."""
    batch = collate(examples, pad_id=tokenizer.pad_token_id).to(device)
    scores = model.relevance(batch).scores
    kept = [top_k(s.flatten(), k) for s, k in zip(scores, num_keep, strict=True)]
    features = selection.encode_images(model.vlm, batch)
    new_tokens = decode(
        model,
        examples,
        kept=kept,
        features=features,
        tokenizer=tokenizer,
        params=params,
        device=device,
    )
    answers = [tokenizer.decode(t, skip_special_tokens=True).strip() for t in new_tokens]
    return answers, [k.cpu() for k in kept]


def decode(
    model: ArrCoc, examples, *, kept, features, tokenizer, params, device
) -> list[list[int]]:
    """The new tokens of each example, up to its end-of-turn token (included)."""
    new: list[list[int]] = [[] for _ in examples]
    gates = [torch.ones(len(k), device=device) for k in kept]
    num_dropped = [sum(e.mm_token_type_ids) - len(k) for e, k in zip(examples, kept, strict=True)]
    for _ in range(params.max_new_tokens):
        batch = collate(
            [_extended(e, t) for e, t in zip(examples, new, strict=True)],
            pad_id=tokenizer.pad_token_id,
        ).to(device)
        logits = _logits(model, batch, features=features, kept=kept, gates=gates)
        # The last real position of each cut row: its length less the dropped visual tokens.
        last = [
            len(e.input_ids) + len(t) - d - 1
            for e, t, d in zip(examples, new, num_dropped, strict=True)
        ]
        chosen = pick(logits[torch.arange(len(examples)), torch.tensor(last)], params).tolist()
        for tokens, token in zip(new, chosen, strict=True):
            if not tokens or tokens[-1] != tokenizer.eos_token_id:
                tokens.append(token)
        if all(t and t[-1] == tokenizer.eos_token_id for t in new):
            break
    return new


def _logits(model: ArrCoc, batch: Batch, *, features, kept, gates) -> torch.Tensor:
    positions = selection.rope_positions(model.vlm, batch)
    visual = selection.Visual(features, positions, model.image_token_id)
    logits, _ = selection.forward_kept(model.vlm, batch, visual=visual, indices=kept, gates=gates)
    return logits


def _extended(example: Example, tokens: list[int]) -> Example:
    """`example` with `tokens` appended as text after its prompt."""
    return dataclasses.replace(
        example,
        input_ids=example.input_ids + tokens,
        labels=example.labels + [IGNORE] * len(tokens),
        mm_token_type_ids=example.mm_token_type_ids + [0] * len(tokens),
    )


def pick(logits: torch.Tensor, params) -> torch.Tensor:
    """[B] next tokens: the most likely at temperature 0, else sampled from the top_p nucleus."""
    if params.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    ranked, order = probs.sort(dim=-1, descending=True)
    # Keep the most likely tokens up to top_p of the mass (the first always).
    ranked = ranked * ((ranked.cumsum(-1) - ranked) < params.top_p)
    return order.gather(-1, torch.multinomial(ranked, 1)).squeeze(-1)
