"""The VLM trainer config: one dataclass per section, validated where it is built.

Sections map to `--set` prefixes: `vision.`, `language.`, `freeze.`, `data.`, `optim.`, `train.`,
`ddp.`, `lora.`, `checkpoint.`, `wandb.`. The language and LoRA sections are the shared language
model layer's (trainers.lm.config), the optimizer, schedule, checkpoint and W&B sections every
trainer's (trainers.common.sections). Presets in `trainers.vlm.presets` return complete configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.common.config import check, check_choice
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig, WandbConfig
from trainers.lm.config import LoraConfig, ModelConfig

IMAGE_TOKEN = "<image>"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(kw_only=True)
class VisionConfig:
    # An HF id or directory of a SigLIP or CLIP checkpoint (full model or vision tower);
    # "scratch" builds a SigLIP-style ViT from the sizes below.
    source: str = "scratch"
    image_size: int = 32  # scratch only: a checkpoint brings its own size, patch and widths
    patch_size: int = 8
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    # The hidden state that feeds the projector: -1 is the last layer, LLaVA uses -2.
    feature_layer: int = -1

    def __post_init__(self):
        check(bool(self.source), "vision.source", self.source, "an HF id, a directory or 'scratch'")
        for name in ("image_size", "patch_size", "hidden_size", "num_layers", "num_heads"):
            check(getattr(self, name) > 0, f"vision.{name}", getattr(self, name), "must be > 0")
        check(
            self.image_size % self.patch_size == 0,
            "vision.image_size",
            self.image_size,
            f"must be a multiple of vision.patch_size={self.patch_size}",
        )
        check(
            self.hidden_size % self.num_heads == 0,
            "vision.hidden_size",
            self.hidden_size,
            f"must be divisible by vision.num_heads={self.num_heads}",
        )
        check(self.feature_layer < 0, "vision.feature_layer", self.feature_layer, "must be < 0")


@dataclass(kw_only=True)
class FreezeConfig:
    """What trains: the projector always; the vision tower unless frozen; the language model
    fully, through LoRA adapters (`lora.enabled`), or not at all (`freeze.language`)."""

    vision: bool = True
    language: bool = False


@dataclass(kw_only=True)
class DataConfig:
    train: str = ""  # JSONL or Parquet image-text records; "" makes the synthetic shapes set
    eval: str = ""  # "" holds out `eval_fraction` of the training records
    eval_fraction: float = 0.05
    synthetic_examples: int = 4000
    max_text_tokens: int = 256  # text tokens per example; image tokens come on top
    caption_prompt: str = "Describe the image."
    on_bad_record: str = "error"  # or "skip": a bad record or unreadable image is counted
    num_workers: int = 2  # DataLoader processes that decode and resize images
    mask_prompt: bool = True

    def __post_init__(self):
        check(
            0.0 <= self.eval_fraction < 1.0,
            "data.eval_fraction",
            self.eval_fraction,
            "must be in [0, 1)",
        )
        check(
            self.synthetic_examples > 0, "data.synthetic_examples", self.synthetic_examples, "> 0"
        )
        check(
            self.max_text_tokens >= 8, "data.max_text_tokens", self.max_text_tokens, "must be >= 8"
        )
        check(self.num_workers >= 0, "data.num_workers", self.num_workers, "must be >= 0")
        check_choice("data.on_bad_record", self.on_bad_record, ("error", "skip"))


@dataclass(kw_only=True)
class DDPConfig:
    # The set of trained parameters is the same every step (frozen ones are outside DDP), which
    # is what static_graph needs; it lets DDP skip the per-step search for unused parameters.
    static_graph: bool = True
    gradient_as_bucket_view: bool = True


def _vlm_lora() -> LoraConfig:
    return LoraConfig(target_modules=LORA_TARGETS, merge=True)


@dataclass(kw_only=True)
class VLMConfig:
    preset: str = "custom"
    output_dir: str = "./outputs/model"
    vision: VisionConfig = field(default_factory=VisionConfig)
    language: ModelConfig = field(default_factory=ModelConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ddp: DDPConfig = field(default_factory=DDPConfig)
    lora: LoraConfig = field(default_factory=_vlm_lora)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def __post_init__(self):
        check(bool(self.output_dir), "output_dir", self.output_dir, "must name a directory")
        check(
            not (self.lora.enabled and self.freeze.language),
            "freeze.language",
            self.freeze.language,
            "a frozen language model takes no LoRA adapters; unset lora.enabled or this",
        )
        check(
            self.vision.source == "scratch" or self.vision.feature_layer in (-1, -2),
            "vision.feature_layer",
            self.vision.feature_layer,
            "use -1 or -2 with a pretrained tower",
        )
