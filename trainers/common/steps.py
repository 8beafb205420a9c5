"""What the pipeline's steps ask of a trainer, typed: each trainer declares one `TrainerSteps`
(`trainers/<name>/steps.py`), and components/common.py imports them by name, statically.

    steps = LLM_STEPS                                   # trainers.llm.steps.STEPS
    cfg = steps.config(["--preset", "debug"])           # as `python -m trainers.llm` resolves it
    stats = steps.prepare(cfg, train_dir="out/train", eval_dir="out/eval")
    result = steps.evaluate("out/model", "out/eval", max_examples=128, max_new_tokens=32)
    gate = gate_value(result.metrics, "neg_eval_loss")  # -eval_loss

Importing a steps module costs no torch: each step imports its work when it runs, so a
pipeline can read a trainer's gate metrics without loading a model library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from trainers.common.config import ConfigError
from trainers.common.entrypoint import resolve_config


@dataclass
class Evaluation:
    metrics: dict[str, float]  # by plain name ("eval_loss"); a gate metric names one of them
    samples: list[dict]  # one per generated answer: what the sample table shows, and more
    columns: list[str]  # the sample table's columns, in order (keys of every sample)

    def rows(self) -> list[list]:
        return [[sample[c] for c in self.columns] for sample in self.samples]


class Prepare(Protocol):
    def __call__(self, cfg: Any, *, train_dir: str, eval_dir: str) -> dict: ...


class Evaluate(Protocol):
    def __call__(
        self, model_uri: str, eval_dir: str, *, max_examples: int, max_new_tokens: int
    ) -> Evaluation: ...


@dataclass(frozen=True)
class TrainerSteps:
    name: str  # the pipelines' `trainer` parameter
    module: str  # what the train step runs: `python -m MODULE ARGS`
    parser: Callable[[], argparse.ArgumentParser]  # that command line
    get_preset: Callable[[str], Any]  # a preset's config by name
    # Write the prepared train and eval splits; return {"train": manifest, "eval": manifest}.
    prepare: Prepare
    numbers: Callable[[dict], dict]  # a manifest's own numbers, besides the common ones
    describe: Callable[[dict], str]  # a manifest in a few words, for the step's log
    evaluate: Evaluate  # a trained model directory on a prepared eval split
    # Higher is better for every gate metric, so a gate is `value >= threshold`; the first is
    # the pipelines' default. "neg_X" gates on -X.
    gate_metrics: tuple[str, ...]

    def config(self, argv: list[str]):
        """The resolved, validated config `python -m MODULE ARGV` runs with."""
        return resolve_config(self.parser().parse_args(argv), self.get_preset)

    def dataset_metadata(self, manifest: dict) -> dict:
        """A prepared split's numbers, flat, for its Dataset artifact (the Vertex UI shows
        them): the records, the trainer's own numbers, what was dropped, the fingerprint."""
        return {
            "records": manifest["num_records"],
            **self.numbers(manifest),
            "skipped_records": manifest["skipped_records"],
            "duplicates_removed": manifest["duplicates_removed"],
            "fingerprint": manifest["fingerprint"],
        }

    def check_gate_metric(self, gate_metric: str) -> str:
        if gate_metric not in self.gate_metrics:
            raise ConfigError(
                f"gate_metric={gate_metric!r} is invalid: the {self.name} trainer's are "
                + ", ".join(self.gate_metrics)
            )
        return gate_metric


def gate_value(metrics: dict[str, float], gate_metric: str) -> float:
    """The value a gate compares with its threshold: the metric, or minus it for "neg_X"."""
    name = gate_metric.removeprefix("neg_")
    if name not in metrics:
        raise ConfigError(
            f"gate_metric={gate_metric!r} is invalid: it needs {name}, which this eval split lacks"
        )
    return metrics[name] if name == gate_metric else -metrics[name]
