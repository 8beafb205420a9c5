"""Causal LMs: a Llama built from config sizes ("scratch") or weights from an HF id, a local
directory or a gs:// directory; optional LoRA adapters and activation checkpointing.

    model = build_model(cfg.model, vocab_size=len(tokenizer))
    with loading(source, field="vision.source", needs=("config.json",)):   # one-line errors
        tower = SiglipVisionModel.from_pretrained(local_source(source))

A source that is not a model (an id the Hub or its offline cache does not have, a directory
without one) is a one-line ConfigError naming the setting, not transformers' traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from trainers.common import storage
from trainers.common.config import ConfigError
from trainers.common.model_cache import cached_copy
from trainers.lm.config import LoraConfig, ModelConfig

ADAPTER_CONFIG = "adapter_config.json"
MODEL_FILES = ("config.json", ADAPTER_CONFIG)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@contextlib.contextmanager
def loading(source: str, *, field: str, needs: tuple[str, ...] = MODEL_FILES) -> Iterator[None]:
    """Load from `source` (an HF id, a local or gs:// directory) inside this block: a local
    directory without any of `needs`, a path that is not there, or a source transformers cannot
    load (OSError, ValueError: not on the Hub, not in the offline cache, gated, no model
    inside) raise a one-line ConfigError naming `field`."""
    if not storage.is_remote(source):
        if os.path.isdir(source) and not any(
            os.path.isfile(os.path.join(source, name)) for name in needs
        ):
            have = " or ".join(needs)
            raise ConfigError(f"{field}={source!r} is a directory without {have}: not a model")
        if not os.path.isdir(source) and source.startswith(("/", ".", "~")):
            raise ConfigError(f"{field}={source!r}: no such directory")
    try:
        yield
    except (OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{field}={source!r}: cannot load a model from it ({reason})") from None


def local_source(source: str) -> str:
    """An HF id or local directory as is; a gs:// (or /gcs/ without a mount) directory as a
    local copy of its current content (trainers.common.model_cache)."""
    if not storage.is_remote(source):
        return source
    return cached_copy(source)


def tokenizer_from(source: str, *, field: str):
    """The tokenizer of `source` (an HF id, a local or gs:// directory); one that is not there
    is a one-line ConfigError naming `field`."""
    from trainers.lm.tokenizer import load_tokenizer

    with loading(source, field=field, needs=TOKENIZER_FILES):
        return load_tokenizer(local_source(source))


def build_model(cfg: ModelConfig, *, vocab_size: int, field: str = "model.source"):
    """The model in fp32 (autocast supplies bf16 compute on CUDA), in train mode; `field`
    names `cfg.source` in errors."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if cfg.source == "scratch":
        config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads,
            intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_position_embeddings,
            tie_word_embeddings=True,
        )
        config._attn_implementation = cfg.attn_implementation
        model = LlamaForCausalLM(config)
    else:
        with loading(cfg.source, field=field):
            model = AutoModelForCausalLM.from_pretrained(
                local_source(cfg.source),
                dtype=torch.float32,
                attn_implementation=cfg.attn_implementation,
            )
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def add_lora(model, cfg: LoraConfig):
    """Wrap `model` with LoRA adapters; only adapter weights stay trainable."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_config = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_config)


def count_parameters(model) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def save_trained(model, tokenizer, local: str, *, merge: bool) -> None:
    """The model and tokenizer as an HF directory in `local` (a LoRA model: its adapter); with
    `merge` (LoRA only) also the full weights in `merged/`, which `trained_model_dir` prefers."""
    model.save_pretrained(local)
    tokenizer.save_pretrained(local)
    if merge:
        merged = os.path.join(local, "merged")
        model.merge_and_unload().save_pretrained(merged)
        tokenizer.save_pretrained(merged)


def trained_model_dir(uri: str) -> str:
    """The local directory to load a trained model from (local, gs:// or /gcs/): a LoRA run's
    `merged/` full weights when present, else the directory itself."""
    local = local_source(uri)
    merged = os.path.join(local, "merged")
    if os.path.isfile(os.path.join(merged, "config.json")):
        return merged
    if not any(os.path.isfile(os.path.join(local, f)) for f in ("config.json", ADAPTER_CONFIG)):
        raise FileNotFoundError(
            f"{uri} is not a model directory: it has no config.json or {ADAPTER_CONFIG}"
        )
    return local


def load_trained(uri: str, *, device: str | None = None):
    """(model, tokenizer) in eval mode from a directory the trainer wrote (`trained_model_dir`):
    the full weights, else the base model with the LoRA adapter merged in. On CUDA when there
    is one (bf16), else CPU (fp32); `model.device` says which."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.lm.tokenizer import load_tokenizer

    local = trained_model_dir(uri)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if os.path.isfile(os.path.join(local, "config.json")):
        model = AutoModelForCausalLM.from_pretrained(local, dtype=dtype)
    else:
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(local, dtype=dtype).merge_and_unload()
    return model.to(device).eval(), load_tokenizer(local)
