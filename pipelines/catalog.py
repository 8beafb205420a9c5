"""The pipelines liftoff ships, by name (`liftoff pipelines`): each a declaration
(pipelines/declaration.py) in a module of its own.

    pipeline = get_pipeline("vlm-ddp")      # Pipeline(name="vlm-ddp", trainer="vlm", ...)
    pipeline.build(target)                  # the KFP pipeline function

A new pipeline is a module with its declaration and a line in PIPELINES.
"""

from __future__ import annotations

from pipelines.arr_coc import PIPELINE as ARR_COC
from pipelines.declaration import Pipeline
from pipelines.llm_finetune import PIPELINE as LLM_FINETUNE
from pipelines.vlm_ddp import PIPELINE as VLM_DDP
from trainers.common.config import suggest

PIPELINES: dict[str, Pipeline] = {p.name: p for p in (LLM_FINETUNE, VLM_DDP, ARR_COC)}


def get_pipeline(name: str) -> Pipeline:
    """The declaration of pipeline `name`; a ValueError naming the choices if there is none."""
    if name not in PIPELINES:
        hint = suggest(name, PIPELINES)
        raise ValueError(f"unknown pipeline {name!r}{hint} (pipelines: {', '.join(PIPELINES)})")
    return PIPELINES[name]


def summaries() -> list[tuple[str, str]]:
    return [(name, pipeline.summary) for name, pipeline in PIPELINES.items()]
