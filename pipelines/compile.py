"""Compile a pipeline for the vertex target into KFP IR YAML (also runs on self-hosted KFP).

    compile_pipeline("llm-finetune", hardware=get_profile("a100x8"), path="llm-finetune.yaml")

The same inputs give the same bytes (the golden-file test holds it to that).
"""

from __future__ import annotations

from pipelines.catalog import get_pipeline
from pipelines.hardware import Profile
from pipelines.targets import VertexTarget


def vertex_pipeline(name: str, *, hardware: Profile, serving: Profile | None = None):
    target = VertexTarget(hardware=hardware, **({"serving": serving} if serving else {}))
    return get_pipeline(name).build(target)


def compile_pipeline(
    name: str, *, hardware: Profile, path: str, serving: Profile | None = None
) -> str:
    from kfp import compiler

    compiler.Compiler().compile(vertex_pipeline(name, hardware=hardware, serving=serving), path)
    return path
