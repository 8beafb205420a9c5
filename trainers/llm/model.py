"""Causal LMs: a Llama built from config sizes ("scratch") or weights from an HF id, a local
directory or a gs:// directory; optional LoRA adapters and activation checkpointing.
"""

from __future__ import annotations

import os
import tempfile

from trainers.common import storage
from trainers.llm.config import LoraConfig, ModelConfig


def local_source(source: str) -> str:
    """An HF id or local directory as is; a gs:// (or /gcs/) directory copied to local disk."""
    if not storage.is_remote(source):
        return source
    target = os.path.join(tempfile.gettempdir(), "liftoff-models", source.replace("/", "_"))
    if not os.path.exists(os.path.join(target, "config.json")):
        storage.download_dir(source, target)
    return target


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


def load_trained(uri: str, *, device: str = "cpu"):
    """(model, tokenizer) from a directory the trainer wrote (local, gs:// or /gcs/): the full
    weights, or for a LoRA run its `merged/` weights, else the base model with the adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.llm.tokenizer import load_tokenizer

    local = local_source(uri)
    merged = os.path.join(local, "merged")
    if os.path.isfile(os.path.join(merged, "config.json")):
        local = merged
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if os.path.isfile(os.path.join(local, "config.json")):
        model = AutoModelForCausalLM.from_pretrained(local, dtype=dtype)
    elif os.path.isfile(os.path.join(local, "adapter_config.json")):
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(local, dtype=dtype).merge_and_unload()
    else:
        raise ValueError(f"{uri}: no model here (neither config.json nor adapter_config.json)")
    return model.to(device).eval(), load_tokenizer(local)
