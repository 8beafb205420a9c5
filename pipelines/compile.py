"""Compile a pipeline for the vertex target into KFP IR YAML (also runs on self-hosted KFP).

    compile_pipeline("llm-finetune", hardware=get_profile("a100x8"), images=images,
                     path="llm-finetune.yaml")
    compile_pipeline("vlm-ddp", ..., defaults={"preset": "siglip-so400m-qwen2.5-1.5b"})

`defaults` replace the declared parameter defaults (a template for one preset or data set).
The same inputs give the same bytes (the golden-file test holds it to that).
"""

from __future__ import annotations

import json
from pathlib import Path

from components.images import Images
from pipelines.catalog import get_pipeline
from pipelines.hardware import Profile
from pipelines.targets import VertexTarget


def vertex_pipeline(
    name: str,
    *,
    hardware: Profile,
    images: Images,
    serving: Profile | None = None,
    defaults: dict | None = None,
    web_access: bool = False,
):
    target = VertexTarget(
        hardware=hardware,
        images=images,
        web_access=web_access,
        **({"serving": serving} if serving else {}),
    )
    return get_pipeline(name).build(target, defaults=defaults)


def compile_pipeline(
    name: str,
    *,
    hardware: Profile,
    images: Images,
    path: str,
    serving: Profile | None = None,
    defaults: dict | None = None,
    web_access: bool = False,
) -> str:
    from kfp import compiler

    pipeline_func = vertex_pipeline(
        name,
        hardware=hardware,
        images=images,
        serving=serving,
        defaults=defaults,
        web_access=web_access,
    )
    compiler.Compiler().compile(pipeline_func, path)
    _sort_header(path, pipeline_func)
    return path


def _sort_header(path: str, pipeline_func) -> None:
    """KFP heads the file with a comment listing the inputs and their defaults, read from a
    protobuf Struct whose key order changes from one process to the next: a dict inside a
    default (vlm-ddp's sample instances) would give different bytes for the same inputs.
    Write that comment again, with KFP's own function, from key-sorted defaults."""
    from google.protobuf import json_format
    from kfp.compiler.pipeline_spec_builder import extract_comments_from_pipeline_spec

    spec = json.loads(
        json.dumps(json_format.MessageToDict(pipeline_func.pipeline_spec), sort_keys=True)
    )
    lines = Path(path).read_text().splitlines(keepends=True)
    body = "".join(lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) :])
    header = extract_comments_from_pipeline_spec(spec, pipeline_func.description)
    Path(path).write_text(header + body)
