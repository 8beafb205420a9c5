"""The base VLM ARR-COC wraps: a real Qwen3-VL (`Qwen3VLForConditionalGeneration`) with its
tokenizer, chat template and image processor, loaded from an HF id or a local or gs:// directory,
or a tiny one built from a config with a tokenizer trained in-process (the debug preset).

    base = load_base(BaseConfig(source="Qwen/Qwen3-VL-2B-Instruct"))
    base = build_scratch(BaseConfig(), texts=scene_texts(), seed=0)   # nothing downloaded
    save_base(base, "outputs/base")      # a directory `load_base` (and HF) reads back

There is no `Qwen3VLProcessor` here: constructing one needs torchvision for its video processor,
which the trainer image does not ship. The processor's own parts are used instead: the image
processor (`Qwen2VLImageProcessorPil`, pixels and `image_grid_thw`), the tokenizer and the chat
template; `trainers.arr_coc.inputs` expands the image placeholders as the processor would.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from trainers.arr_coc.config import SCRATCH, BaseConfig
from trainers.lm.model import local_source

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
IMAGE_TOKEN = "<|image_pad|>"
END_TOKEN = "<|im_end|>"
# Qwen3-VL's turn format for one image and text, without its tool and video branches.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
PIXEL_MEAN = (0.5, 0.5, 0.5)  # Qwen3-VL's own image processor values
PIXEL_STD = (0.5, 0.5, 0.5)


@dataclass
class Base:
    model: object  # Qwen3VLForConditionalGeneration
    tokenizer: object
    image_processor: object

    @property
    def image_token_id(self) -> int:
        return self.model.config.image_token_id

    @property
    def hidden_size(self) -> int:
        return self.model.config.text_config.hidden_size


def build_scratch(cfg: BaseConfig, *, texts: list[str], seed: int):
    """A tiny Qwen3-VL from `cfg`'s sizes, its weights seeded, with a BPE tokenizer trained on
    `texts`; fp32, train mode."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    tokenizer = train_tokenizer(texts, vocab_size=cfg.vocab_size)
    config = scratch_config(cfg, tokenizer=tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    model.config.use_cache = False
    return Base(model=model, tokenizer=tokenizer, image_processor=image_processor(cfg))


def scratch_config(cfg: BaseConfig, *, tokenizer):
    from transformers import Qwen3VLConfig

    head_dim = cfg.text_hidden // cfg.text_heads
    # M-RoPE splits head_dim / 2 frequencies over (t, h, w); Qwen3-VL interleaves them.
    quarter = head_dim // 8
    mrope = [head_dim // 2 - 2 * quarter, quarter, quarter]
    side = int((cfg.max_pixels**0.5) // cfg.patch_size)  # learned position grid, interpolated
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        vision_config={
            "depth": cfg.vision_layers,
            "hidden_size": cfg.vision_hidden,
            "intermediate_size": 2 * cfg.vision_hidden,
            "num_heads": cfg.vision_heads,
            "patch_size": cfg.patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": cfg.text_hidden,
            "num_position_embeddings": side * side,
            "deepstack_visual_indexes": list(cfg.deepstack_layers),
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": cfg.text_hidden,
            "intermediate_size": 2 * cfg.text_hidden,
            "num_hidden_layers": cfg.text_layers,
            "num_attention_heads": cfg.text_heads,
            "num_key_value_heads": cfg.text_kv_heads,
            "head_dim": head_dim,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": mrope,
                "mrope_interleaved": True,
            },
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=ids(IMAGE_TOKEN),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    config._attn_implementation = cfg.attn_implementation
    return config


def train_tokenizer(texts: list[str], *, vocab_size: int):
    """A byte-level BPE over `texts` with Qwen's special tokens and turn format."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=END_TOKEN, pad_token=SPECIAL_TOKENS[0]
    )
    wrapped.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def image_processor(cfg: BaseConfig, *, source: str | None = None):
    """Qwen's image processor (PIL backend): from a checkpoint, or for the scratch model; its
    pixel range is cfg's either way."""
    from transformers import AutoImageProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    size = {"shortest_edge": cfg.min_pixels, "longest_edge": cfg.max_pixels}
    if source is not None:
        return AutoImageProcessor.from_pretrained(source, size=size, backend="pil")
    return Qwen2VLImageProcessorPil(
        patch_size=cfg.patch_size,
        merge_size=2,
        temporal_patch_size=2,
        size=size,
        image_mean=list(PIXEL_MEAN),
        image_std=list(PIXEL_STD),
    )


def load_base(cfg: BaseConfig, *, dtype=None) -> Base:
    """A Qwen3-VL checkpoint (HF id, local or gs:// directory) with its tokenizer, chat template
    and image processor; fp32 unless `dtype` says otherwise, train mode, no KV cache."""
    import torch
    from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

    if cfg.source == SCRATCH:
        raise ValueError("base.source='scratch' has no checkpoint to load; use build_scratch")
    source = local_source(cfg.source)
    quiet_progress()
    model = Qwen3VLForConditionalGeneration.from_pretrained(
        source, dtype=dtype or torch.float32, attn_implementation=cfg.attn_implementation
    )
    model.config.use_cache = False
    tokenizer = AutoTokenizer.from_pretrained(source)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = read_chat_template(source)
    return Base(
        model=model, tokenizer=tokenizer, image_processor=image_processor(cfg, source=source)
    )


def read_chat_template(source: str) -> str:
    """The processor's chat template of a checkpoint (Qwen3-VL ships it beside the tokenizer)."""
    from transformers.utils import cached_file

    for name in CHAT_TEMPLATE_FILES:
        path = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
        if path:
            with open(path) as f:
                text = f.read()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    raise ValueError(
        f"base.source={source!r} has no chat template ({', '.join(CHAT_TEMPLATE_FILES)})"
    )


def save_base(base: Base, path: str, *, state_dict: dict | None = None) -> str:
    """Write the model (safetensors; `state_dict` instead of the model's own, e.g. with LoRA
    merged), tokenizer, chat template and image processor to `path`."""
    os.makedirs(path, exist_ok=True)
    quiet_progress()
    base.model.save_pretrained(path, state_dict=state_dict)
    base.tokenizer.save_pretrained(path)
    base.image_processor.save_pretrained(path)
    return path


def quiet_progress() -> None:
    """No weight loading/writing progress bars: in a job's logs (and under one-line errors)
    they are noise, one line per shard and process."""
    from transformers.utils import logging

    logging.disable_progress_bar()
