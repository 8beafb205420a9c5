"""The LLM fine-tuning config: one dataclass per section, validated where it is built.

Sections map to `--set` prefixes: `model.`, `data.`, `optim.`, `train.`, `lora.`, `checkpoint.`,
`wandb.`. Presets in `trainers.llm.presets` return complete configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
class DataConfig:
    train: str = ""  # JSONL or Parquet; "" makes the synthetic arithmetic set
    eval: str = ""  # "" holds out `eval_fraction` of the training records
    eval_fraction: float = 0.05
    synthetic_examples: int = 4000
    seq_len: int = 512
    overlong: str = "truncate"  # or "drop"; either way the count is logged
    on_bad_record: str = "error"  # or "skip"; skipped records are counted and logged
    mask_prompt: bool = True

    def __post_init__(self):
        check(
            0.0 <= self.eval_fraction < 1.0,
            "data.eval_fraction",
            self.eval_fraction,
            "must be in [0, 1)",
        )
        check(
            self.synthetic_examples > 0,
            "data.synthetic_examples",
            self.synthetic_examples,
            "must be > 0",
        )
        check(self.seq_len >= 8, "data.seq_len", self.seq_len, "must be >= 8")
        check_choice("data.overlong", self.overlong, ("truncate", "drop"))
        check_choice("data.on_bad_record", self.on_bad_record, ("error", "skip"))


@dataclass(kw_only=True)
class OptimConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping

    def __post_init__(self):
        check(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        check(
            0 <= self.min_lr_ratio <= 1,
            "optim.min_lr_ratio",
            self.min_lr_ratio,
            "must be in [0, 1]",
        )
        check(self.warmup_steps >= 0, "optim.warmup_steps", self.warmup_steps, "must be >= 0")
        check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0")
        check(
            0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
            "optim.beta1/beta2",
            (self.beta1, self.beta2),
            "must be in [0, 1)",
        )
        check(self.grad_clip >= 0, "optim.grad_clip", self.grad_clip, "must be >= 0")


@dataclass(kw_only=True)
class TrainConfig:
    max_steps: int = 100  # optimizer steps
    global_batch_size: int = 8  # packed sequences per optimizer step, over all ranks
    micro_batch_size: int = 8  # packed sequences per forward pass on one rank
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    log_every: int = 10
    eval_every: int = 50  # 0: only at the end
    eval_batches: int = 8  # 0: the whole eval split
    exact_match_examples: int = 64  # held-out prompts generated greedily at the end; 0 skips
    max_new_tokens: int = 16
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default

    def __post_init__(self):
        for name in ("max_steps", "global_batch_size", "micro_batch_size", "log_every"):
            check(getattr(self, name) > 0, f"train.{name}", getattr(self, name), "must be > 0")
        for name in ("eval_every", "eval_batches", "exact_match_examples", "threads"):
            check(getattr(self, name) >= 0, f"train.{name}", getattr(self, name), "must be >= 0")
        check(
            self.global_batch_size % self.micro_batch_size == 0,
            "train.global_batch_size",
            self.global_batch_size,
            f"must be a multiple of train.micro_batch_size={self.micro_batch_size}",
        )
        check_choice("train.precision", self.precision, ("auto", "fp32", "bf16"))


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


@dataclass(kw_only=True)
class CheckpointConfig:
    dir: str = "./outputs/checkpoints"
    every_steps: int = 50  # 0: only on SIGTERM
    keep_last: int = 2

    def __post_init__(self):
        check(self.every_steps >= 0, "checkpoint.every_steps", self.every_steps, "must be >= 0")
        check(self.keep_last >= 1, "checkpoint.keep_last", self.keep_last, "must be >= 1")


@dataclass(kw_only=True)
class WandbConfig:
    project: str = "liftoff"
    enabled: bool = True
    secret: str = ""  # Secret Manager version holding the API key; never the key itself


@dataclass(kw_only=True)
class LLMConfig:
    preset: str = "custom"
    output_dir: str = "./outputs/model"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def __post_init__(self):
        check(bool(self.output_dir), "output_dir", self.output_dir, "must name a directory")
        check(
            self.data.seq_len <= self.model.max_position_embeddings
            or self.model.source != "scratch",
            "data.seq_len",
            self.data.seq_len,
            f"must be <= model.max_position_embeddings={self.model.max_position_embeddings}",
        )
