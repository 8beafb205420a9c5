"""Selection through the real Qwen3-VL API: with every token kept the logits are the base
model's; with a quarter kept they are what the base model computes when the dropped tokens are
masked out of attention, which holds only if every kept token has its own M-RoPE position and
its own DeepStack features."""

from dataclasses import replace

import pytest
import torch

from tests.support.tiny_qwen3_vl import make_tiny_qwen
from trainers.arr_coc import selection
from trainers.arr_coc.config import RelevanceConfig
from trainers.arr_coc.model import ArrCoc


def _model(base) -> ArrCoc:
    torch.manual_seed(0)
    return ArrCoc(base, RelevanceConfig(budget=0.25)).eval()


@torch.no_grad()
def test_keeping_every_token_gives_the_base_models_logits(tiny_qwen, scene_batch):
    reference = tiny_qwen.model(**scene_batch.model_inputs()).logits
    out = _model(tiny_qwen)(scene_batch, budget=1.0)
    assert out.allocation.num_kept == [64] * scene_batch.num_examples
    assert torch.equal(out.logits, reference)
    assert torch.equal(out.labels, scene_batch.labels)


def _masked_reference(base, batch, indices):
    """The base model over all tokens, the dropped image tokens hidden from attention."""
    attention = batch.attention_mask.clone()
    for b, kept in enumerate(indices):
        image_at = (batch.input_ids[b] == base.image_token_id).nonzero().squeeze(1)
        dropped = torch.ones(len(image_at), dtype=torch.bool)
        dropped[kept] = False
        attention[b, image_at[dropped]] = 0
    logits = base.model(
        input_ids=batch.input_ids,
        attention_mask=attention,
        position_ids=selection.rope_positions(base.model, batch),
        pixel_values=batch.pixel_values,
        image_grid_thw=batch.image_grid_thw,
    ).logits
    return [logits[b, attention[b].bool()] for b in range(len(indices))]


@torch.no_grad()
def test_kept_tokens_mean_what_they_meant_with_all_tokens(tiny_qwen, scene_batch):
    model = _model(tiny_qwen)
    out = model(scene_batch)
    assert out.allocation.num_kept == [16] * scene_batch.num_examples
    reference = _masked_reference(tiny_qwen, scene_batch, out.allocation.indices)
    for b, expected in enumerate(reference):
        assert torch.allclose(out.logits[b, : len(expected)], expected, atol=1e-5)
    # Guards: the check can fail. Kept tokens given the DeepStack features of their neighbours,
    # or all given one position, change the logits.
    visual = selection.prepare(
        tiny_qwen.model, scene_batch, image_token_id=tiny_qwen.image_token_id
    )
    assert _same(tiny_qwen, scene_batch, visual, out, reference)
    features = visual.features
    rolled = selection.Features(
        features.embeds, [[r.roll(1, dims=0) for r in layer] for layer in features.deepstack]
    )
    assert not _same(tiny_qwen, scene_batch, replace(visual, features=rolled), out, reference)
    flat = visual.positions.clone()
    for b in range(scene_batch.num_examples):
        image_at = (scene_batch.input_ids[b] == tiny_qwen.image_token_id).nonzero().squeeze(1)
        flat[:, b, image_at] = visual.positions[:, b, image_at[:1]]
    assert not _same(tiny_qwen, scene_batch, replace(visual, positions=flat), out, reference)


def _same(base, batch, visual, out, reference) -> bool:
    alloc = out.allocation
    logits, _ = selection.forward_kept(
        base.model, batch, visual=visual, indices=alloc.indices, gates=alloc.gates
    )
    return all(torch.allclose(logits[b, : len(r)], r, atol=1e-5) for b, r in enumerate(reference))


def test_cut_keeps_positions_labels_and_text(tiny_qwen, scene_batch):
    positions = selection.rope_positions(tiny_qwen.model, scene_batch)
    indices = [
        torch.tensor([0, 9, 63]),
        torch.arange(64),
        torch.tensor([5]),
        torch.tensor([62, 63]),
    ]
    c = selection.cut(
        scene_batch, positions=positions, indices=indices, image_token_id=tiny_qwen.image_token_id
    )
    image = tiny_qwen.image_token_id
    for b, kept in enumerate(indices):
        rows = c.attention_mask[b].bool()
        assert int((c.input_ids[b][rows] == image).sum()) == len(kept)
        full = scene_batch.attention_mask[b].bool()
        text = scene_batch.input_ids[b][full] != image
        assert torch.equal(
            c.input_ids[b][rows][c.input_ids[b][rows] != image],
            scene_batch.input_ids[b][full][text],
        )
        assert torch.equal(
            c.labels[b][rows][c.labels[b][rows] != -100],
            scene_batch.labels[b][scene_batch.labels[b] != -100],
        )
        image_at = (scene_batch.input_ids[b] == image).nonzero().squeeze(1)
        kept_positions = positions[:, b, image_at[kept]]
        assert torch.equal(
            c.position_ids[:, b, rows][:, c.input_ids[b][rows] == image], kept_positions
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@torch.no_grad()
def test_on_cuda_in_bf16_every_token_still_gives_the_base_models_logits(scene_batch):
    base = make_tiny_qwen()
    base.model.to("cuda")
    batch = scene_batch.to("cuda")
    model = _model(base).to("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        reference = base.model(**batch.model_inputs()).logits
        out = model(batch, budget=1.0)
        quarter = model(batch)
    assert torch.equal(out.logits, reference)
    assert quarter.allocation.num_kept == [16] * batch.num_examples
    assert torch.isfinite(quarter.logits).all()
