"""Causal LMs: a Llama built from config sizes ("scratch") or weights from an HF id, a local
directory or a gs:// directory; optional LoRA adapters and activation checkpointing.
"""

from __future__ import annotations

import os

from trainers.common import storage
from trainers.common.model_cache import cached_copy
from trainers.lm.config import LoraConfig, ModelConfig

ADAPTER_CONFIG = "adapter_config.json"


def local_source(source: str) -> str:
    """An HF id or local directory as is; a gs:// (or /gcs/ without a mount) directory as a
    local copy of its current content (trainers.common.model_cache)."""
    if not storage.is_remote(source):
        return source
    return cached_copy(source)


def build_model(cfg: ModelConfig, *, vocab_size: int):
    """The model in fp32 (autocast supplies bf16 compute on CUDA), in train mode."""
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
