"""What a Vertex run or schedule runs: a pipeline compiled here from the command line, or a
template pushed to Artifact Registry, with its parameters parsed and checked before anything is
sent.

    with tempfile.TemporaryDirectory() as tmp:
        what = prepare(args, directory=tmp)     # args: submit's or schedule create's
        what.path, what.template_uri, what.params, what.pipeline

`args.template` (a template URI, pipelines/templates.py) or `args.pipeline` (a name, compiled
with the hardware, image and web-access options). A template's hardware and images were fixed
when it was compiled: those flags are refused with it. `--param` is typed by the template's own
inputs; a template of a liftoff pipeline gets the same checks as the pipeline (its defaults
being the template's), and one whose training step writes to a fixed directory is refused for
what would repeat it (a schedule).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from pipelines.catalog import PIPELINES, get_pipeline
from pipelines.preflight import check_params

# Compile options that a template already fixed.
COMPILE_FLAGS = (
    *("hardware", "nodes", "spot", "flex_start", "timeout", "trainer_image", "serving_image"),
    *("image_repo", "image_version", "enable_web_access"),
)
# What makes a directory per run: the job's own name or id, resolved by Vertex at run time.
RUN_PLACEHOLDERS = ("{{$.pipeline_job_name}}", "{{$.pipeline_job_uuid}}")


@dataclass(frozen=True, kw_only=True)
class Runnable:
    pipeline: str  # the pipeline's name (the template's pipelineInfo.name)
    path: str  # the compiled template, on this machine
    template_uri: str  # the pinned template URI it came from; "" when compiled here
    params: dict  # the --param values, typed and checked
    defaults: dict  # every parameter's default (the template's own, for a template)


def prepare(args, *, directory: str) -> Runnable:
    if args.template:
        return _from_template(args, directory=directory)
    if not args.pipeline:
        raise ValueError("name a pipeline (liftoff pipelines) or pass --template URI")
    return compile_here(args, directory=directory)


def compile_here(args, *, directory: str, as_defaults: bool = False) -> Runnable:
    """`args.pipeline` compiled into `directory`; with `as_defaults`, the --param values become
    the template's defaults (a template to push) instead of the run's values."""
    from pipelines import commands
    from pipelines.compile import compile_pipeline

    pipeline = get_pipeline(args.pipeline)
    params = commands._params(args, pipeline)
    check_params(pipeline, params, target="vertex")
    training, serving = commands._profiles(args, pipeline)
    baked = params if as_defaults else None
    path = compile_pipeline(
        args.pipeline,
        hardware=training,
        serving=serving,
        images=commands._images(args, serving=serving),
        path=os.path.join(directory, f"{args.pipeline}.yaml"),
        defaults=baked,
        web_access=args.enable_web_access,
    )
    defaults = {p.name: p.default for p in pipeline.parameters(defaults=baked)}
    if as_defaults:
        params = {}
    return Runnable(
        pipeline=args.pipeline, path=path, template_uri="", params=params, defaults=defaults
    )


def _from_template(args, *, directory: str) -> Runnable:
    from pipelines.params import parse_params
    from pipelines.templates import fetch_template, parse_template_uri

    given = [f"--{f.replace('_', '-')}" for f in COMPILE_FLAGS if getattr(args, f, None)]
    if args.pipeline or given:
        what = f"PIPELINE {args.pipeline!r}" if args.pipeline else ", ".join(given)
        raise ValueError(
            f"--template: {what} cannot go with a template, whose pipeline, hardware and images "
            "were fixed when it was compiled (liftoff templates push)"
        )
    path, pinned = fetch_template(parse_template_uri(args.template), directory=directory)
    spec = _pipeline_spec(path)
    inputs = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    params = parse_params(args.param, {k: v["parameterType"] for k, v in inputs.items()})
    if args.set:
        params["overrides"] = [*params.get("overrides", []), *args.set]
    name = spec["pipelineInfo"]["name"]
    defaults = {k: v["defaultValue"] for k, v in inputs.items() if "defaultValue" in v}
    if name in PIPELINES:
        check_params(get_pipeline(name), {**defaults, **params}, target="vertex")
    return Runnable(
        pipeline=name, path=path, template_uri=pinned.uri, params=params, defaults=defaults
    )


def _pipeline_spec(path: str) -> dict:
    with open(path) as f:
        document = yaml.safe_load(f)
    spec = document.get("pipelineSpec", document) if isinstance(document, dict) else None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ValueError(f"{path}: not a KFP pipeline template")
    return spec


def check_repeatable(path: str) -> None:
    """A template that can run again and again: each training task writes to a directory of
    its own run. A fixed `base_output_directory` would make every scheduled run resume from
    the previous run's final checkpoint (and train nothing)."""
    spec = _pipeline_spec(path)
    for component in [spec["root"], *spec.get("components", {}).values()]:
        for name, task in component.get("dag", {}).get("tasks", {}).items():
            given = task.get("inputs", {}).get("parameters", {}).get("base_output_directory", {})
            value = given.get("runtimeValue", {}).get("constant")
            if isinstance(value, str) and not any(p in value for p in RUN_PLACEHOLDERS):
                raise ValueError(
                    f"{spec['pipelineInfo']['name']}: task {name!r} writes to the fixed "
                    f"directory {value!r}: every scheduled run would resume from the last "
                    "one's checkpoints; compile or push the template again with this liftoff"
                )
