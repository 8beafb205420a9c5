"""The VLM and its freeze policy, in process: frozen weights get no gradient and stay out of the
optimizer, every trained weight is reached by the loss (what DDP without find_unused_parameters
needs), LoRA sits on the language model only; and pretrained SigLIP/CLIP towers and a Llama load
from local directories with their own weights."""

import json
import re

import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    SiglipConfig,
    SiglipModel,
)

from tests.support.tiny_model import make_tiny_model_dir
from tests.support.trainer_runs import TINY_VLM
from trainers.common.optim import build_optimizer
from trainers.vlm.__main__ import parser, resolve_config
from trainers.vlm.data import ImageTextDataset, collate, make_tokenizer, tokenize_all
from trainers.vlm.evaluate import token_loss_sum
from trainers.vlm.images import CLIP_MEAN, CLIP_STD, SIGLIP_MEAN, SIGLIP_STD
from trainers.vlm.model import (
    PROCESSOR_FILE,
    add_lora,
    build_model,
    count_by_part,
    model_parts,
    num_image_tokens,
    unreachable_vision_params,
)
from trainers.vlm.synthetic import shapes_records

RECORDS = shapes_records(24, seed=0, image_size=32)


def _cfg(*overrides: str):
    sets = [a for item in overrides for a in ("--set", item)]
    return resolve_config(parser().parse_args([*TINY_VLM, *sets]))


def _build(cfg, records=RECORDS):
    tokenizer = make_tokenizer(cfg, records)
    torch.manual_seed(0)
    model, spec = build_model(cfg, tokenizer=tokenizer)
    return model, spec, tokenizer


def _batch(cfg, model, spec, tokenizer, records=RECORDS):
    located = [(f"t:{i + 1}", r) for i, r in enumerate(records[:8])]
    examples, _ = tokenize_all(tokenizer, located, cfg, num_image_tokens=num_image_tokens(model))
    dataset = ImageTextDataset(examples, spec)
    return collate(
        [dataset[i] for i in range(len(dataset))], pad_id=tokenizer.pad_token_id, spec=spec
    )


def _backward(model, batch) -> float:
    model.train()
    loss, count = token_loss_sum(model, batch, "cpu")
    assert count > 0 and torch.isfinite(loss)
    (loss / count).backward()
    return float(loss.detach())


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def _trainable(model) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad}


def _numel(params) -> int:
    return sum(p.numel() for p in params)


def test_default_freezes_the_vision_tower_and_trains_projector_and_language():
    cfg = _cfg()
    model, spec, tokenizer = _build(cfg)
    parts = model_parts(model)
    vision, projector = list(parts["vision"].parameters()), list(parts["projector"].parameters())
    language = list(parts["language"].parameters())
    _backward(model, _batch(cfg, model, spec, tokenizer))

    assert vision and all(not p.requires_grad and p.grad is None for p in vision)
    # Guard: the image reached the loss, so "vision got no gradient" is the freeze's doing.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector)
    assert all(p.grad is not None for p in language)
    assert _trainable(model) == _ids(projector) | _ids(language)

    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.95), eps=1e-8)
    in_optimizer = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(in_optimizer) == len(_ids(in_optimizer))  # none twice (tied embeddings)
    assert _ids(in_optimizer) == _trainable(model)
    assert not _ids(in_optimizer) & _ids(vision)

    counts = count_by_part(model)
    assert counts["vision"] == 0
    assert counts["projector"] == _numel(projector) > 0
    assert counts["language"] == _numel(language) > 0
    assert counts["trainable"] == counts["projector"] + counts["language"]
    assert counts["total"] == counts["trainable"] + _numel(vision)


def test_frozen_language_model_leaves_only_the_projector_training():
    cfg = _cfg("freeze.language=true")
    model, spec, tokenizer = _build(cfg)
    projector = list(model_parts(model)["projector"].parameters())
    _backward(model, _batch(cfg, model, spec, tokenizer))
    assert _trainable(model) == _ids(projector)
    with_grad = {id(p) for p in model.parameters() if p.grad is not None}
    assert with_grad == _ids(projector)
    assert count_by_part(model)["trainable"] == _numel(projector)


@pytest.mark.parametrize("feature_layer", [-1, -2])
def test_trained_vision_tower_excludes_only_what_no_loss_reaches(feature_layer):
    cfg = _cfg("freeze.vision=false", f"vision.feature_layer={feature_layer}")
    model, spec, tokenizer = _build(cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    dead = {names[id(p)] for p in unreachable_vision_params(model)}
    # Independently: hidden_states[feature_layer] feeds the projector, so layers after it and
    # the post-norm never touch the loss (the debug tower has 2 layers: -2 leaves out layer 1).
    expected = {n for n in names.values() if ".post_layernorm." in n}
    if feature_layer == -2:
        expected |= {n for n in names.values() if ".encoder.layers.1." in n}
    assert dead == expected and dead

    _backward(model, _batch(cfg, model, spec, tokenizer))
    for name, param in model.named_parameters():
        if name in dead:
            assert not param.requires_grad and param.grad is None, name
        else:
            # Every trained weight gets a gradient each step: what static_graph and DDP
            # without find_unused_parameters rely on.
            assert param.requires_grad and param.grad is not None, name
    vision = model_parts(model)["vision"].parameters()
    live_vision = [p for p in vision if p.requires_grad]
    assert live_vision and all(p.grad.abs().sum() > 0 for p in live_vision[:4])
    assert count_by_part(model)["vision"] == _numel(live_vision)


def test_lora_adapts_the_language_model_only_and_keeps_the_projector_training():
    cfg = _cfg("lora.enabled=true", "lora.r=4")
    model, spec, tokenizer = _build(cfg)
    model = add_lora(model, cfg)
    llava = model.base_model.model
    projector = list(model_parts(llava)["projector"].parameters())
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    adapters = [(n, p) for n, p in trainable if "lora_" in n]
    assert adapters and all(".language_model." in n for n, _ in adapters)
    targeted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in adapters}
    assert targeted == set(cfg.lora.target_modules)
    assert _ids(p for n, p in trainable if "lora_" not in n) == _ids(projector)
    base_language = [p for n, p in model.named_parameters() if "lora_" not in n]
    assert all(not p.requires_grad for p in base_language if id(p) not in _ids(projector))

    _backward(model, _batch(cfg, llava, spec, tokenizer))
    with_grad = {id(p) for p in model.parameters() if p.grad is not None}
    assert with_grad == _trainable(model)

    counts = count_by_part(model)
    assert counts["vision"] == 0
    assert counts["projector"] == _numel(projector)
    assert counts["language"] == _numel(p for _, p in adapters) > 0
    assert counts["trainable"] == counts["projector"] + counts["language"]
    assert counts["total"] == _numel(model.parameters())


# --- pretrained towers and language model from local directories --------------------------

SIZE = 16  # the smallest image the synthetic shapes fit in
PATCH = 4


def _tiny_tower_dir(path, kind: str) -> tuple[str, torch.Tensor]:
    """A saved, seeded tiny tower (`kind` "siglip": a full SigLIP with its text half; "clip":
    a CLIP vision model) and its processor config; returns (dir, its patch embedding)."""
    sizes = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=SIZE,
        patch_size=PATCH,
    )
    torch.manual_seed(7)
    if kind == "siglip":
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1)
        model = SiglipModel(
            SiglipConfig(text_config={**text, "num_attention_heads": 4}, vision_config=sizes)
        )
        processor = {
            "size": {"height": SIZE, "width": SIZE},
            "image_mean": SIGLIP_MEAN,
            "image_std": SIGLIP_STD,
        }
    else:
        model = CLIPVisionModel(CLIPVisionConfig(**sizes))
        processor = {
            "size": {"shortest_edge": SIZE},
            "crop_size": {"height": SIZE, "width": SIZE},
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
        }
    model.save_pretrained(path)
    (path / PROCESSOR_FILE).write_text(json.dumps(processor))
    vit = getattr(model, "vision_model", model)
    return str(path), vit.embeddings.patch_embedding.weight.detach().clone()


@pytest.fixture(scope="module")
def language_dir(tmp_path_factory):
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("llama")))


@pytest.mark.parametrize(
    ("kind", "strategy", "mean"),
    [("siglip", "full", SIGLIP_MEAN), ("clip", "default", CLIP_MEAN)],
)
def test_pretrained_tower_and_language_model_load_from_directories(
    tmp_path, language_dir, kind, strategy, mean
):
    tower_dir, patch_weight = _tiny_tower_dir(tmp_path / kind, kind)
    cfg = _cfg(
        f"vision.source={tower_dir}",
        f"language.source={language_dir}",
        f"language.tokenizer={language_dir}",
    )
    records = shapes_records(8, seed=1, image_size=SIZE)
    model, spec, tokenizer = _build(cfg, records)

    assert spec.size == SIZE and spec.mean == tuple(mean)
    assert model.config.vision_feature_select_strategy == strategy
    # One placeholder per patch; CLIP's class token is dropped by the "default" strategy.
    assert num_image_tokens(model) == (SIZE // PATCH) ** 2
    tower = model.model.vision_tower
    vit = getattr(tower, "vision_model", tower)  # transformers 5 unnested SigLIP's ViT
    assert torch.equal(vit.embeddings.patch_embedding.weight, patch_weight)

    from safetensors.torch import load_file

    saved = load_file(f"{language_dir}/model.safetensors")
    layer = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(model.model.language_model.layers[0].self_attn.q_proj.weight, saved[layer])
    # The added <image> token grew the embeddings by one row; the old rows are the saved ones.
    embed = model.get_input_embeddings().weight
    assert embed.shape[0] == len(tokenizer) == saved["model.embed_tokens.weight"].shape[0] + 1
    assert torch.equal(embed[:-1], saved["model.embed_tokens.weight"])

    # SigLIP's pooling head (never read by LLaVA) is frozen whatever freeze.vision says.
    head = [p for n, p in tower.named_parameters() if re.search(r"(^|\.)head\.", n)]
    assert bool(head) == (kind == "siglip")
    assert _ids(head) <= _ids(unreachable_vision_params(model))

    # A forward pass checks the number of image features against the placeholders.
    _backward(model, _batch(cfg, model, spec, tokenizer, records))
    assert all(p.grad is None for p in tower.parameters())
