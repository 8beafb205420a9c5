"""The LLM fine-tuning config: one dataclass per section, validated where it is built.

Sections map to `--set` prefixes: `model.`, `data.`, `optim.`, `train.`, `lora.`, `checkpoint.`,
`wandb.`. Presets in `trainers.llm.presets` return complete configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.common.config import check, check_choice
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig, WandbConfig
from trainers.lm.config import LoraConfig, ModelConfig


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
