"""The vision-language model: a SigLIP or CLIP vision tower, an MLP projector and a causal LM
(Llama or Qwen), assembled as HF `LlavaForConditionalGeneration` so the trained directory loads
with `AutoModelForImageTextToText` anywhere. Image features replace the `<image>` placeholder
tokens, one per patch.

    model = build_model(cfg, tokenizer=tok)     # trainable parts per cfg.freeze / cfg.lora
    save_trained(model, tok, spec, "out/model")
    loaded = load_trained("gs://b/run/model")   # model, tokenizer, image spec; eval mode
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from trainers.common.config import ConfigError
from trainers.lm.model import build_model as build_language_model
from trainers.lm.model import loading, local_source
from trainers.vlm.config import IMAGE_TOKEN, VisionConfig, VLMConfig
from trainers.vlm.images import SIGLIP_MEAN, SIGLIP_STD, ImageSpec

PROCESSOR_FILE = "preprocessor_config.json"
# The image processor class whose preprocessing matches trainers.vlm.images.decode.
PROCESSOR_CLASS = "SiglipImageProcessor"


@dataclass
class Loaded:
    model: object
    tokenizer: object
    image: ImageSpec

    @property
    def num_image_tokens(self) -> int:
        return num_image_tokens(self.model)


def num_image_tokens(model) -> int:
    """Placeholder tokens per image: one per patch. (CLIP's class token is dropped again by
    LLaVA's "default" feature selection, so it never reaches the language model.)"""
    vision = model.config.vision_config
    return (vision.image_size // vision.patch_size) ** 2


def build_vision_tower(cfg: VisionConfig):
    """(vision tower, its image spec): from config sizes, or a pretrained SigLIP/CLIP."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    if cfg.source == "scratch":
        config = SiglipVisionConfig(
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            vision_use_head=False,  # LLaVA reads hidden states; a pooling head would be dead weight
        )
        return SiglipVisionModel(config), ImageSpec(
            size=cfg.image_size, mean=SIGLIP_MEAN, std=SIGLIP_STD
        )
    with loading(cfg.source, field="vision.source", needs=("config.json",)):
        return _pretrained_tower(local_source(cfg.source))


def _pretrained_tower(source: str):
    import torch
    from transformers import AutoConfig, CLIPVisionModel, SiglipVisionModel

    config = AutoConfig.from_pretrained(source)
    kind = getattr(config, "vision_config", config).model_type
    classes = {"siglip_vision_model": SiglipVisionModel, "clip_vision_model": CLIPVisionModel}
    if kind not in classes:
        raise ConfigError(f"vision.source={source!r} is a {kind!r} model; expected SigLIP or CLIP")
    tower = classes[kind].from_pretrained(source, dtype=torch.float32)
    return tower, _image_spec(source, tower.config.image_size)


def _image_spec(source: str, size: int) -> ImageSpec:
    path = os.path.join(source, PROCESSOR_FILE)
    if not os.path.isfile(path):
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(source, PROCESSOR_FILE)
    with open(path) as f:
        spec = ImageSpec.from_dict(json.load(f))
    if spec.size != size:
        raise ConfigError(
            f"vision.source={source!r}: its image processor resizes to {spec.size} px but the "
            f"tower takes {size} px"
        )
    return spec


def build_model(cfg: VLMConfig, *, tokenizer):
    """(Llava model in fp32 with cfg's trainable parts, image spec)."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    tower, spec = build_vision_tower(cfg.vision)
    language = build_language_model(
        cfg.language, vocab_size=len(tokenizer), field="language.source"
    )
    if language.get_input_embeddings().num_embeddings < len(tokenizer):
        language.resize_token_embeddings(len(tokenizer))  # room for the added <image> token
    config = LlavaConfig(
        vision_config=tower.config,
        text_config=language.config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=cfg.vision.feature_layer,
        vision_feature_select_strategy="full" if _is_siglip(tower) else "default",
        projector_hidden_act="gelu",
        tie_word_embeddings=language.config.tie_word_embeddings,
    )
    # The shell is built on the meta device: its random towers would be thrown away at once.
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = tower
    model.model.language_model = language.model
    model.lm_head = language.lm_head
    model.model.multi_modal_projector = LlavaMultiModalProjector(config)
    model.config.use_cache = False
    apply_freeze(model, cfg)
    return model, spec


def _is_siglip(tower) -> bool:
    return tower.config.model_type == "siglip_vision_model"


def apply_freeze(model, cfg: VLMConfig) -> None:
    """Set requires_grad per the freeze policy; frozen weights then stay out of the optimizer
    and of DDP's reducer. Tower weights no loss can reach are always frozen."""
    parts = model_parts(model)
    for part, trainable in (
        ("vision", not cfg.freeze.vision),
        ("projector", True),
        ("language", not cfg.freeze.language and not cfg.lora.enabled),
    ):
        parts[part].requires_grad_(trainable)
    for param in unreachable_vision_params(model):
        param.requires_grad_(False)


def model_parts(model) -> dict:
    inner = model.model
    return {
        "vision": inner.vision_tower,
        "projector": inner.multi_modal_projector,
        "language": _LanguageParts(inner.language_model, model.lm_head),
    }


class _LanguageParts:
    """The decoder and its head, which only together make the language model."""

    def __init__(self, decoder, head) -> None:
        self.modules = (decoder, head)

    def requires_grad_(self, flag: bool) -> None:
        for module in self.modules:
            module.requires_grad_(flag)

    def parameters(self):
        seen = set()
        for module in self.modules:
            for p in module.parameters():
                if id(p) not in seen:  # tied embeddings appear in both
                    seen.add(id(p))
                    yield p


def unreachable_vision_params(model) -> list:
    """Tower weights after the feature layer (later layers, post-norm, pooling head): the
    projector never sees their output, so they could only ever get zero gradients."""
    tower = model.model.vision_tower
    tower = getattr(tower, "vision_model", tower)  # older transformers nest the ViT one deeper
    layers = tower.encoder.layers
    keep = len(layers) + 1 + model.config.vision_feature_layer  # hidden_states[k] = after k layers
    dead = [p for layer in layers[keep:] for p in layer.parameters()]
    for name in ("post_layernorm", "head"):
        if getattr(tower, name, None) is not None:
            dead += list(getattr(tower, name).parameters())
    return dead


def add_lora(model, cfg: VLMConfig):
    """LoRA adapters on the language model's projections only; the projector (and a trained
    vision tower) keep training in full."""
    from peft import LoraConfig, get_peft_model

    targets = "|".join(cfg.lora.target_modules)
    peft_config = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=rf".*language_model.*\.({targets})",
    )
    wrapped = get_peft_model(model, peft_config)
    apply_freeze_after_lora(wrapped.base_model.model, cfg)
    return wrapped


def apply_freeze_after_lora(model, cfg: VLMConfig) -> None:
    # get_peft_model freezes every non-adapter weight; the projector must train regardless.
    parts = model_parts(model)
    parts["projector"].requires_grad_(True)
    parts["vision"].requires_grad_(not cfg.freeze.vision)
    for param in unreachable_vision_params(model):
        param.requires_grad_(False)


def count_by_part(model) -> dict[str, int]:
    """Trainable parameters per part (LoRA adapters count under language)."""
    inner = model.base_model.model if hasattr(model, "peft_config") else model
    counts = {
        part: sum(p.numel() for p in module.parameters() if p.requires_grad)
        for part, module in model_parts(inner).items()
    }
    counts["total"] = sum(p.numel() for p in model.parameters())
    counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts


def save_trained(model, tokenizer, spec: ImageSpec, local: str) -> None:
    """The Llava directory `load_trained` reads: weights (LoRA adapters merged in, and kept
    under `adapter/`), the tokenizer with its chat template, the image processor config."""
    if hasattr(model, "peft_config"):
        model.save_pretrained(os.path.join(local, "adapter"))
        model = model.merge_and_unload()  # the run is over: merging in place is fine
    model.save_pretrained(local)
    tokenizer.save_pretrained(local)
    processor = {**spec.to_dict(), "image_processor_type": PROCESSOR_CLASS}
    with open(os.path.join(local, PROCESSOR_FILE), "w") as f:
        json.dump(processor, f, indent=2, sort_keys=True)


def load_trained(uri: str, *, device: str | None = None) -> Loaded:
    """The trained model (bf16 on CUDA, fp32 on CPU), its tokenizer and image spec."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from trainers.lm.tokenizer import load_tokenizer

    local = local_source(uri)
    if not os.path.isfile(os.path.join(local, PROCESSOR_FILE)):
        raise FileNotFoundError(f"{uri} is not a VLM model directory: no {PROCESSOR_FILE}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = LlavaForConditionalGeneration.from_pretrained(local, dtype=dtype)
    with open(os.path.join(local, PROCESSOR_FILE)) as f:
        spec = ImageSpec.from_dict(json.load(f))
    return Loaded(model=model.to(device).eval(), tokenizer=load_tokenizer(local), image=spec)


def is_vlm_dir(local: str) -> bool:
    """Whether a local model directory holds a VLM (vs a text-only LM)."""
    path = os.path.join(local, "config.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get("model_type") == "llava"
