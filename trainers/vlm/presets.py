"""Named, complete VLM configs. `debug` runs in about a minute on 2 CPU cores; the others name
public checkpoints and are sized for one a2-highgpu-8g node (8×A100 40 GB, DDP, one process per
GPU); global batch is in examples (one image each).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from trainers.common.config import ConfigError, suggest
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig
from trainers.lm.config import ModelConfig
from trainers.vlm.config import DataConfig, VisionConfig, VLMConfig

SIGLIP_SO400M = "google/siglip-so400m-patch14-384"
CLIP_L_336 = "openai/clip-vit-large-patch14-336"


def debug() -> VLMConfig:
    """A tiny SigLIP-style ViT (frozen, as by default) and a tiny Llama built from configs, a
    tokenizer trained in-process, the rendered-shapes VQA set made on the fly."""
    return VLMConfig(
        preset="debug",
        vision=VisionConfig(image_size=32, patch_size=4, hidden_size=64, num_layers=2, num_heads=4),
        language=ModelConfig(
            source="scratch",
            tokenizer="trained",
            vocab_size=160,
            hidden_size=128,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=256,
            max_position_embeddings=128,
        ),
        data=DataConfig(synthetic_examples=3000, eval_fraction=0.05, max_text_tokens=48),
        optim=OptimConfig(lr=2e-3, warmup_steps=20, weight_decay=0.01),
        train=TrainConfig(
            max_steps=300,
            global_batch_size=16,
            micro_batch_size=8,
            log_every=20,
            eval_every=100,
            eval_batches=4,
            exact_match_examples=128,
            max_new_tokens=8,
        ),
        checkpoint=CheckpointConfig(every_steps=100),
    )


def _real(
    vision: str,
    language: str,
    *,
    feature_layer: int,
    micro_batch: int,
    lr: float,
    checkpointing: bool = False,
) -> VLMConfig:
    return VLMConfig(
        preset=f"{vision.split('/')[-1]}+{language.split('/')[-1]}",
        vision=VisionConfig(source=vision, feature_layer=feature_layer),
        language=ModelConfig(source=language, gradient_checkpointing=checkpointing),
        data=DataConfig(max_text_tokens=512, num_workers=8),
        optim=OptimConfig(lr=lr, warmup_steps=100, weight_decay=0.0),
        train=TrainConfig(
            max_steps=2000,
            global_batch_size=256,
            micro_batch_size=micro_batch,
            log_every=10,
            eval_every=250,
            eval_batches=16,
            exact_match_examples=256,
            max_new_tokens=64,
        ),
        checkpoint=CheckpointConfig(every_steps=250),
    )


def siglip_llama_3_2_1b() -> VLMConfig:
    return _real(
        SIGLIP_SO400M,
        "meta-llama/Llama-3.2-1B-Instruct",
        feature_layer=-1,
        micro_batch=8,
        lr=2e-5,
        checkpointing=True,
    )


def siglip_qwen2_5_1_5b() -> VLMConfig:
    return _real(
        SIGLIP_SO400M,
        "Qwen/Qwen2.5-1.5B-Instruct",
        feature_layer=-1,
        micro_batch=4,
        lr=1e-5,
        checkpointing=True,
    )


def clip_qwen2_5_7b_lora() -> VLMConfig:
    """CLIP ViT-L/336 (LLaVA-1.5's tower, penultimate layer) with a LoRA-tuned Qwen2.5-7B."""
    cfg = _real(
        CLIP_L_336,
        "Qwen/Qwen2.5-7B-Instruct",
        feature_layer=-2,
        micro_batch=4,
        lr=1e-4,
        checkpointing=True,
    )
    return dataclasses.replace(
        cfg, lora=dataclasses.replace(cfg.lora, enabled=True, r=64, alpha=128)
    )


PRESETS: dict[str, Callable[[], VLMConfig]] = {
    "debug": debug,
    "siglip-so400m-llama-3.2-1b": siglip_llama_3_2_1b,
    "siglip-so400m-qwen2.5-1.5b": siglip_qwen2_5_1_5b,
    "clip-l336-qwen2.5-7b-lora": clip_qwen2_5_7b_lora,
}


def get_preset(name: str) -> VLMConfig:
    if name not in PRESETS:
        raise ConfigError(
            f"--preset {name!r} is unknown{suggest(name, PRESETS)} (presets: {', '.join(PRESETS)})"
        )
    return PRESETS[name]()
