"""The language model's config sections (`model.`, `lora.`), shared by every trainer that trains or
wraps a causal LM."""

from __future__ import annotations

from dataclasses import dataclass

from trainers.common.config import check, check_choice


@dataclass(kw_only=True)
class ModelConfig:
    # An HF id, a local or gs:// directory; "scratch" builds a Llama from the sizes below.
    source: str = "scratch"
    # The tokenizer's source; "" means `source`, "trained" trains a BPE on the data in-process.
    tokenizer: str = ""
    vocab_size: int = 512
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 2048
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    compile: bool = False

    def __post_init__(self):
        check(bool(self.source), "model.source", self.source, "an HF id, a directory or 'scratch'")
        check(
            self.source != "scratch" or self.tokenizer == "trained",
            "model.tokenizer",
            self.tokenizer,
            "a scratch model needs model.tokenizer=trained",
        )
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "max_position_embeddings",
        ):
            check(getattr(self, name) > 0, f"model.{name}", getattr(self, name), "must be > 0")
        check(
            self.hidden_size % self.num_heads == 0,
            "model.hidden_size",
            self.hidden_size,
            f"must be divisible by model.num_heads={self.num_heads}",
        )
        check(
            self.num_heads % self.num_kv_heads == 0,
            "model.num_kv_heads",
            self.num_kv_heads,
            f"must divide model.num_heads={self.num_heads}",
        )
        check_choice(
            "model.attn_implementation",
            self.attn_implementation,
            ("sdpa", "flash_attention_2", "eager"),
        )


@dataclass(kw_only=True)
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    merge: bool = False  # also save the base model with the adapter merged in

    def __post_init__(self):
        check(self.r > 0, "lora.r", self.r, "must be > 0")
        check(self.alpha > 0, "lora.alpha", self.alpha, "must be > 0")
        check(0 <= self.dropout < 1, "lora.dropout", self.dropout, "must be in [0, 1)")
        check(
            len(self.target_modules) > 0,
            "lora.target_modules",
            self.target_modules,
            "name at least one module",
        )
