"""Named, complete LLM configs. `debug` runs in about a minute on 2 CPU cores; the others name
public models and are sized for the hardware profiles of the pipelines (global batch is in packed
sequences, so tokens per step = global_batch_size * seq_len).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from trainers.common.config import ConfigError, suggest
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig
from trainers.llm.config import DataConfig, LLMConfig
from trainers.lm.config import LoraConfig, ModelConfig


def debug() -> LLMConfig:
    """A 4-layer Llama built from a config, a tokenizer trained in-process, synthetic arithmetic."""
    return LLMConfig(
        preset="debug",
        model=ModelConfig(
            source="scratch",
            tokenizer="trained",
            vocab_size=320,
            hidden_size=128,
            num_layers=4,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=384,
            max_position_embeddings=256,
        ),
        data=DataConfig(seq_len=256, synthetic_examples=6000, eval_fraction=0.05),
        optim=OptimConfig(lr=3e-3, warmup_steps=20, weight_decay=0.01),
        train=TrainConfig(
            max_steps=500,
            global_batch_size=8,
            micro_batch_size=8,
            log_every=20,
            eval_every=100,
            eval_batches=4,
            exact_match_examples=128,
        ),
        checkpoint=CheckpointConfig(every_steps=100),
    )


def _real(
    source: str,
    *,
    seq_len: int,
    global_batch: int,
    micro_batch: int,
    lr: float,
    lora: bool = False,
    checkpointing: bool = False,
) -> LLMConfig:
    return LLMConfig(
        preset=source,
        model=ModelConfig(source=source, gradient_checkpointing=checkpointing),
        data=DataConfig(seq_len=seq_len),
        optim=OptimConfig(lr=lr, warmup_steps=50, weight_decay=0.0 if lora else 0.1),
        train=TrainConfig(
            max_steps=1000,
            global_batch_size=global_batch,
            micro_batch_size=micro_batch,
            log_every=10,
            eval_every=200,
            eval_batches=16,
            exact_match_examples=0,
            max_new_tokens=256,
        ),
        lora=LoraConfig(enabled=lora),
        checkpoint=CheckpointConfig(every_steps=200),
    )


def llama_3_2_1b() -> LLMConfig:
    return _real(
        "meta-llama/Llama-3.2-1B-Instruct", seq_len=4096, global_batch=64, micro_batch=4, lr=2e-5
    )


def llama_3_1_8b_lora() -> LLMConfig:
    return _real(
        "meta-llama/Llama-3.1-8B-Instruct",
        seq_len=4096,
        global_batch=32,
        micro_batch=2,
        lr=2e-4,
        lora=True,
        checkpointing=True,
    )


def qwen2_5_0_5b() -> LLMConfig:
    return _real(
        "Qwen/Qwen2.5-0.5B-Instruct", seq_len=4096, global_batch=64, micro_batch=8, lr=2e-5
    )


def qwen2_5_7b_lora() -> LLMConfig:
    cfg = _real(
        "Qwen/Qwen2.5-7B-Instruct",
        seq_len=4096,
        global_batch=32,
        micro_batch=2,
        lr=1e-4,
        lora=True,
        checkpointing=True,
    )
    return dataclasses.replace(cfg, lora=LoraConfig(enabled=True, r=32, alpha=64))


PRESETS: dict[str, Callable[[], LLMConfig]] = {
    "debug": debug,
    "llama-3.2-1b": llama_3_2_1b,
    "llama-3.1-8b-lora": llama_3_1_8b_lora,
    "qwen2.5-0.5b": qwen2_5_0_5b,
    "qwen2.5-7b-lora": qwen2_5_7b_lora,
}


def get_preset(name: str) -> LLMConfig:
    if name not in PRESETS:
        raise ConfigError(
            f"--preset {name!r} is unknown{suggest(name, PRESETS)} (presets: {', '.join(PRESETS)})"
        )
    return PRESETS[name]()
