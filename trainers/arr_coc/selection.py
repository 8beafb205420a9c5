"""Give Qwen3-VL's LM only the kept visual tokens, each with its own position and DeepStack
features, through the model's own API.

    visual = prepare(model, batch, image_token_id=base.image_token_id)   # the tower, once
    logits, labels = forward_kept(model, batch, visual=visual, indices=alloc.indices,
                                  gates=alloc.gates)
    target = saliency(model, batch, visual=visual)      # the dense distillation target

The vision tower runs once (`get_image_features`: merged tokens and the DeepStack features of
its chosen layers). The full sequence's M-RoPE ids come from the model's `get_rope_index`, so a
kept token keeps its (t, h, w) and every text token keeps its position: the sequence is the
base model's with the dropped image tokens cut out. The LM is then called through the model's
`forward` with the kept rows as `mm_encoder_outputs` (merged tokens and DeepStack features
alike), the cut `input_ids` (one `<|image_pad|>` per kept token) and the cut `position_ids`:
Qwen3-VL's own placeholder scatter and DeepStack injection do the rest. With every token kept
the call is the base model's forward, so the logits are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainers.arr_coc.inputs import Batch
from trainers.arr_coc.losses import answer_ce
from trainers.common.packing import IGNORE


@dataclass
class Features:
    embeds: list[torch.Tensor]  # per image: [num_cells, D] merged tokens, the LM's inputs
    deepstack: list[list[torch.Tensor]]  # per DeepStack layer, per image: [num_cells, D]


@dataclass
class Visual:
    """What one batch's selections share: the tower's output and the full M-RoPE ids."""

    features: Features
    positions: torch.Tensor  # (3, B, L) of the full sequences
    image_token_id: int


@dataclass
class Cut:
    """The LM inputs with only the kept visual tokens."""

    input_ids: torch.Tensor  # [B, L'], right-padded
    attention_mask: torch.Tensor
    position_ids: torch.Tensor  # (3, B, L')
    labels: torch.Tensor


def prepare(model, batch: Batch, *, image_token_id: int) -> Visual:
    return Visual(encode_images(model, batch), rope_positions(model, batch), image_token_id)


def encode_images(model, batch: Batch) -> Features:
    """Run the vision tower once; no graph through a frozen tower."""
    trains = any(p.requires_grad for p in model.model.visual.parameters())
    with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
        out = model.model.get_image_features(batch.pixel_values, batch.image_grid_thw)
    return Features(list(out.pooler_output), [list(layer) for layer in out.deepstack_features])


def rope_positions(model, batch: Batch) -> torch.Tensor:
    """The base model's (3, B, L) M-RoPE position ids of the full sequences."""
    positions, _ = model.model.get_rope_index(
        batch.input_ids,
        mm_token_type_ids=batch.mm_token_type_ids,
        image_grid_thw=batch.image_grid_thw,
        attention_mask=batch.attention_mask,
    )
    return positions


def cut(
    batch: Batch, *, positions: torch.Tensor, indices: list[torch.Tensor], image_token_id: int
) -> Cut:
    """Drop every visual token not in `indices` (per image, positions among its tokens)."""
    rows = []
    for b, kept in enumerate(indices):
        keep = batch.attention_mask[b].bool().clone()
        image_at = (batch.input_ids[b] == image_token_id).nonzero().squeeze(1)
        keep[image_at] = False
        keep[image_at[kept.to(image_at.device)]] = True
        rows.append(keep.nonzero().squeeze(1))
    width = max(len(r) for r in rows)
    return Cut(
        input_ids=_gather(batch.input_ids, rows, width, fill=0),
        attention_mask=_gather(batch.attention_mask, rows, width, fill=0),
        position_ids=torch.stack([_gather(p, rows, width, fill=0) for p in positions]),
        labels=_gather(batch.labels, rows, width, fill=IGNORE),
    )


def _gather(
    table: torch.Tensor, rows: list[torch.Tensor], width: int, *, fill: int
) -> torch.Tensor:
    out = table.new_full((len(rows), width), fill)
    for b, row in enumerate(rows):
        out[b, : len(row)] = table[b, row]
    return out


def kept_encoder_outputs(features: Features, *, indices, gates) -> dict:
    """`mm_encoder_outputs` for Qwen3-VL's forward: the kept rows, each times its gate."""
    from transformers.models.qwen3_vl.modeling_qwen3_vl import (
        BaseModelOutputWithDeepstackFeatures,
    )

    def take(rows: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        kept = zip(rows, indices, gates, strict=True)
        return tuple(r[i.to(r.device)] * g.to(r.device, r.dtype).unsqueeze(-1) for r, i, g in kept)

    image = BaseModelOutputWithDeepstackFeatures(
        pooler_output=take(features.embeds),
        deepstack_features=[take(layer) for layer in features.deepstack],
    )
    return {"image": image}


def forward_kept(
    model, batch: Batch, *, visual: Visual, indices, gates
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of the LM over the cut sequences."""
    c = cut(
        batch, positions=visual.positions, indices=indices, image_token_id=visual.image_token_id
    )
    out = model(
        input_ids=c.input_ids,
        attention_mask=c.attention_mask,
        position_ids=c.position_ids,
        mm_encoder_outputs=kept_encoder_outputs(visual.features, indices=indices, gates=gates),
    )
    return out.logits, c.labels


def saliency(model, batch: Batch, *, visual: Visual) -> list[torch.Tensor]:
    """The dense distillation target: per image, [num_cells] |gradient x input| of the answer
    loss with every token kept, summed over the merged token and its DeepStack features, then
    normalised to sum 1. No parameter gets a gradient from this pass."""
    embeds = [e.detach().requires_grad_() for e in visual.features.embeds]
    deepstack = [
        [d.detach().requires_grad_() for d in layer] for layer in visual.features.deepstack
    ]
    leaves = Visual(Features(embeds, deepstack), visual.positions, visual.image_token_id)
    everything = [torch.arange(len(e), device=e.device) for e in embeds]
    ones = [torch.ones(len(e), device=e.device) for e in embeds]
    with torch.enable_grad():
        logits, labels = forward_kept(model, batch, visual=leaves, indices=everything, gates=ones)
        flat = embeds + [d for layer in deepstack for d in layer]
        grads = torch.autograd.grad(answer_ce(logits, labels)[0].sum(), flat)
    scores = [(g * x).sum(-1).abs() for g, x in zip(grads, flat, strict=True)]
    num = len(embeds)
    totals = [sum(scores[i::num]) for i in range(num)]
    return [(t / t.sum().clamp(min=1e-12)).detach() for t in totals]
