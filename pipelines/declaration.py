"""A pipeline is a small declaration; one factory turns any declaration into its KFP pipeline.

    PIPELINE = Pipeline(name="llm-finetune", summary="...", trainer="llm", presets=get_preset,
                        default_hardware="a100x1", gate_metrics=("exact_match", "neg_eval_loss"),
                        gate_threshold=0.05, sample_instances=("What is 12 + 7?",))
    pipeline_func = PIPELINE.build(target)     # for kfp.local, or for the KFP compiler

Every pipeline takes the parameters of pipelines/params.py (declared once, each with the
description the compiler writes into the IR) and runs the DAG of pipelines/stages.py. A trainer
trained in stages declares them, and each stage after the first starts from the model of the
one before:

    stages=(TrainStage(name="stage-1", trainer_args=("--stage", "1")),
            TrainStage(name="stage-2", trainer_args=("--stage", "2")), ...)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines import params


@dataclass(frozen=True, kw_only=True)
class TrainStage:
    """One training step. `name` names its task, its CustomJob and its checkpoint directory;
    `trainer_args` go to the trainer after the pipeline's own; a stage after the first gets
    the previous stage's Model artifact as `--init-model DIR`."""

    name: str = "train"
    trainer_args: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    name: str  # also the registered model's default name
    summary: str  # one line: `liftoff pipelines`, the compiled description
    trainer: str  # which trainer every step works for ("llm", "vlm", ...)
    presets: Callable[[str], Any]  # preset name -> config; checked before anything runs
    default_hardware: str  # a profile of pipelines/hardware.py
    gate_metrics: tuple[str, ...]  # what its evaluation can gate on; the first by default
    gate_threshold: float
    sample_instances: tuple  # what the deploy check predicts
    samples_param: str = "sample_instances"  # the parameter that carries them
    local_nproc_per_node: int = 1  # training processes on the local target (> 1: gloo DDP)
    stages: tuple[TrainStage, ...] = field(default=(TrainStage(),))

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        assert names and len(set(names)) == len(names), names

    @property
    def gate_metric(self) -> str:
        return self.gate_metrics[0]

    def own_defaults(self) -> dict[str, Any]:
        """The parameter defaults this pipeline declares itself."""
        return {
            "gate_metric": self.gate_metric,
            "gate_threshold": self.gate_threshold,
            "model_name": self.name,
            self.samples_param: list(self.sample_instances),
        }

    def parameters(self, *, defaults: dict | None = None) -> list[params.Param]:
        return params.declared(self, defaults=defaults)

    def build(self, target, *, defaults: dict | None = None):
        """The pipeline function for `target` (a LocalTarget or a VertexTarget); `defaults`
        replace declared defaults (a template compiled for one preset or data set)."""
        from kfp import dsl

        from components.train.component import train
        from pipelines import stages

        declared = self.parameters(defaults=defaults)
        # Made outside the pipeline function: GCPC's CustomJob wrapper breaks inside (kfp#9320).
        train_ops = [target.training_op(train, stage=stage) for stage in self.stages]
        signature = _signature(declared, returns=stages.Outputs)

        def pipeline(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return stages.chain(self, target, train_ops, bound.arguments)

        pipeline.__signature__ = signature
        pipeline.__name__ = self.name.replace("-", "_")
        # KFP reads each input's description from the docstring's Args section.
        pipeline.__doc__ = _docstring(self.summary, declared)
        return dsl.pipeline(name=self.name, description=self.summary)(pipeline)


def _signature(declared: list[params.Param], *, returns) -> inspect.Signature:
    return inspect.Signature(
        [
            inspect.Parameter(
                p.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=p.default,
                annotation=p.type,
            )
            for p in declared
        ],
        return_annotation=returns,
    )


def _docstring(summary: str, declared: list[params.Param]) -> str:
    args = "\n".join(f"    {p.name}: {p.description}" for p in declared)
    return f"{summary}\n\nArgs:\n{args}\n"
