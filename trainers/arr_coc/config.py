"""The ARR-COC model's config sections: `base.` (the Qwen3-VL it wraps), `relevance.` (the
scorers, the balancer, the allocator and the stage losses) and `lora.` (adapters on the LM).

    cfg = ArrCocModelConfig(base=BaseConfig(source="Qwen/Qwen3-VL-2B-Instruct"))
    cfg = apply_overrides(cfg, ["relevance.budget=0.25", "relevance.distill_weight=0.5"])

`ArrCocConfig` is the trainer's whole config: these sections, `data.`, the shared training
sections (`optim.`, `train.`, `checkpoint.`, `wandb.`: trainers.common.sections) and
`init_model`, the previous stage's saved model (`--init-model`). Presets in
`trainers.arr_coc.presets` return complete configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.common.config import check, check_choice
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig, WandbConfig
from trainers.lm.config import LoraConfig

SCRATCH = "scratch"
STAGES = (1, 2, 3)


@dataclass(kw_only=True)
class BaseConfig:
    """The base VLM: an HF id or directory of a Qwen3-VL checkpoint, or "scratch": a tiny one
    built from the sizes below with a tokenizer trained in-process (nothing downloaded)."""

    source: str = SCRATCH
    # Pixels: the processor resizes each image to a multiple of patch_size * merge_size within
    # [min_pixels, max_pixels]; a checkpoint brings its own patch and merge sizes.
    min_pixels: int = 32 * 32
    max_pixels: int = 128 * 128
    # Scratch sizes only.
    patch_size: int = 8
    vision_layers: int = 2
    vision_hidden: int = 64
    vision_heads: int = 4
    deepstack_layers: tuple[int, ...] = (0,)
    text_layers: int = 2
    text_hidden: int = 64
    text_heads: int = 4
    text_kv_heads: int = 2
    vocab_size: int = 320
    attn_implementation: str = "sdpa"
    # Stage 1 also trains every weight of the base on every visual token (answer CE), beside
    # the relevance head: a scratch base knows nothing yet (the debug preset). Stages 2-3
    # ignore it; they start from stage 1's model.
    train_in_stage1: bool = False

    def __post_init__(self):
        check(bool(self.source), "base.source", self.source, "an HF id, a directory or 'scratch'")
        check(
            0 < self.min_pixels <= self.max_pixels,
            "base.min_pixels",
            self.min_pixels,
            f"must be in (0, base.max_pixels={self.max_pixels}]",
        )
        for name in ("patch_size", "vision_layers", "vision_hidden", "text_layers", "vocab_size"):
            check(getattr(self, name) > 0, f"base.{name}", getattr(self, name), "must be > 0")
        check(
            all(0 <= i < self.vision_layers for i in self.deepstack_layers),
            "base.deepstack_layers",
            self.deepstack_layers,
            f"each must name a vision layer in [0, {self.vision_layers})",
        )
        check(
            len(self.deepstack_layers) <= self.text_layers,
            "base.deepstack_layers",
            self.deepstack_layers,
            f"at most base.text_layers={self.text_layers} (one LM layer each)",
        )
        for prefix in ("vision", "text"):
            hidden, heads = getattr(self, f"{prefix}_hidden"), getattr(self, f"{prefix}_heads")
            check(
                heads > 0 and hidden % heads == 0,
                f"base.{prefix}_heads",
                heads,
                f"must divide base.{prefix}_hidden={hidden}",
            )
        check(
            self.text_heads % self.text_kv_heads == 0,
            "base.text_kv_heads",
            self.text_kv_heads,
            f"must divide base.text_heads={self.text_heads}",
        )
        check_choice("base.attn_implementation", self.attn_implementation, ("sdpa", "eager"))


@dataclass(kw_only=True)
class RelevanceConfig:
    """Scorers, balancer, allocator and the stage losses."""

    stage: int = 1
    # Visual tokens kept per image: a fraction of the image's tokens when <= 1, else a count.
    budget: float = 0.25
    scorer_hidden: int = 64  # the participatory scorer's 1x1 conv width (13 -> this -> D)
    balancer_hidden: int = 128
    # Softness of the keep probabilities sigmoid((score - threshold) / temperature), on scores
    # in [0, 1]: the straight-through gate and the expected budget are made of them.
    temperature: float = 0.05
    # Weight of the dense target from the frozen model (every cell gets a signal); 0 = off.
    distill_weight: float = 0.0
    # The stages that add it. Stage 1 learns from masks; in stage 3 the target pulled the
    # scores against the budget term (measured on the debug scenes: its objective rose).
    distill_stages: tuple[int, ...] = (2,)
    ce_weight: float = 2.0  # stage 3: ce_weight * CE + budget_weight * expected budget
    budget_weight: float = 0.5
    # Stage 3: the balancer's threshold moves each image's cut from the one at `budget` (it
    # starts there), deciding how many tokens; within these fractions.
    min_budget: float = 0.05
    max_budget: float = 0.5

    def __post_init__(self):
        check_choice("relevance.stage", self.stage, STAGES)
        check(
            self.budget > 0 and (self.budget <= 1 or float(self.budget).is_integer()),
            "relevance.budget",
            self.budget,
            "a fraction in (0, 1] or a whole number of tokens",
        )
        for name in ("scorer_hidden", "balancer_hidden", "temperature"):
            check(getattr(self, name) > 0, f"relevance.{name}", getattr(self, name), "must be > 0")
        check(
            set(self.distill_stages) <= set(STAGES),
            "relevance.distill_stages",
            self.distill_stages,
            f"stages among {STAGES}",
        )
        for name in ("distill_weight", "ce_weight", "budget_weight"):
            check(
                getattr(self, name) >= 0, f"relevance.{name}", getattr(self, name), "must be >= 0"
            )
        check(
            0 < self.min_budget <= self.max_budget <= 1,
            "relevance.min_budget",
            self.min_budget,
            f"must be in (0, relevance.max_budget={self.max_budget}] and max_budget <= 1",
        )


@dataclass(kw_only=True)
class ArrCocModelConfig:
    base: BaseConfig = field(default_factory=BaseConfig)
    relevance: RelevanceConfig = field(default_factory=RelevanceConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)  # stage 2 (and 3): on the LM only


@dataclass(kw_only=True)
class DataConfig:
    # JSONL or Parquet VQA records (trainers.arr_coc.records), or a prepared split; "" renders
    # the debug scenes: `synthetic_examples` normal ones and `hard_examples` hard ones.
    train: str = ""
    eval: str = ""  # "" holds out `eval_fraction` of the training records
    eval_fraction: float = 0.1
    synthetic_examples: int = 2000
    hard_examples: int = 1000
    on_bad_record: str = "error"  # or "skip": a bad record is counted and left out

    def __post_init__(self):
        check(
            0.0 <= self.eval_fraction < 1.0,
            "data.eval_fraction",
            self.eval_fraction,
            "must be in [0, 1)",
        )
        for name in ("synthetic_examples", "hard_examples"):
            check(getattr(self, name) >= 0, f"data.{name}", getattr(self, name), "must be >= 0")
        check_choice("data.on_bad_record", self.on_bad_record, ("error", "skip"))


@dataclass(kw_only=True)
class ArrCocConfig(ArrCocModelConfig):
    """What `python -m trainers.arr_coc` runs: one stage (`relevance.stage`, --stage)."""

    preset: str = "custom"
    output_dir: str = "./outputs/model"
    # The previous stage's saved model directory (trainers.arr_coc.saved), local or gs://;
    # stages 2 and 3 start from it. "" in stage 1: the base from `base.source`.
    init_model: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def __post_init__(self):
        check(bool(self.output_dir), "output_dir", self.output_dir, "must name a directory")
        stage = self.relevance.stage
        check(
            stage == 1 or bool(self.init_model),
            "init_model",
            self.init_model,
            f"stage {stage} starts from the previous stage's model: pass --init-model DIR",
        )


def model_config(cfg: ArrCocModelConfig) -> ArrCocModelConfig:
    """The model's own sections of a trainer config (what a saved model records)."""
    return ArrCocModelConfig(base=cfg.base, relevance=cfg.relevance, lora=cfg.lora)
