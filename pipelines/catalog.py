"""The pipelines liftoff ships, by name (`liftoff pipelines`)."""

from __future__ import annotations

import importlib

MODULES = {"llm-finetune": "pipelines.llm_finetune", "vlm-ddp": "pipelines.vlm_ddp"}


def get_pipeline(name: str):
    """The pipeline module: NAME, SUMMARY, DEFAULT_HARDWARE, build(target) and optionally
    LOCAL_NPROC_PER_NODE (training processes on the local target; 1 when absent)."""
    if name not in MODULES:
        raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(MODULES)}")
    return importlib.import_module(MODULES[name])


def summaries() -> list[tuple[str, str]]:
    return [(name, get_pipeline(name).SUMMARY) for name in MODULES]
