"""`liftoff presets [PIPELINE]`: the trainer presets a pipeline takes (`--preset`), a line each.
Registered in pipelines.cli's COMMAND_GROUPS.

    liftoff presets                 # every pipeline's
    liftoff presets vlm-ddp

    presets(pipeline)               # {"debug": <function debug>, ...}: the trainer's PRESETS
    describe(pipeline, "debug")     # "a 4-layer Llama built from a config, ...; 500 steps, ..."

Each trainer's presets module keeps its presets in a `PRESETS` dict beside its `get_preset`
(the function a pipeline declares); a preset's line is its docstring's first sentence, or its
model, and its steps, batch and learning rate.
"""

from __future__ import annotations

import inspect

from trainers.common.config import flat_fields, to_dict

EXAMPLE = "examples:\n  liftoff presets\n  liftoff presets llm-finetune"


def register(command) -> None:
    p = command("presets", "list the trainer presets of each pipeline", EXAMPLE)
    p.add_argument("pipeline", nargs="?", help="only this pipeline's (liftoff pipelines)")
    p.set_defaults(handler=list_presets)


def list_presets(args) -> int:
    print("\n".join(preset_lines(args.pipeline)))
    return 0


def preset_lines(name: str | None = None) -> list[str]:
    from pipelines.catalog import PIPELINES, get_pipeline

    pipelines = [get_pipeline(name)] if name else list(PIPELINES.values())
    lines = []
    for pipeline in pipelines:
        if not name:
            lines.append(f"{pipeline.name}:")
        for preset in presets(pipeline):
            lines.append(f"{'  ' if not name else ''}{preset:<28} {describe(pipeline, preset)}")
    return lines


def presets(pipeline) -> dict:
    """The presets of `pipeline`'s trainer, by name."""
    module = inspect.getmodule(pipeline.presets)
    table = getattr(module, "PRESETS", None)
    assert isinstance(table, dict), f"{module.__name__} has no PRESETS beside its get_preset"
    return table


def describe(pipeline, name: str) -> str:
    fields = flat_fields(to_dict(pipeline.presets(name)))
    doc = " ".join((inspect.getdoc(presets(pipeline)[name]) or "").split())
    sources = [
        fields[k]
        for k in ("vision.source", "language.source", "model.source", "base.source")
        if k in fields
    ]
    what = doc.split(". ")[0].rstrip(".") if doc else " + ".join(sources)
    shape = [
        {True: "LoRA", False: "full"}.get(fields.get("lora.enabled")),
        _shown(fields, "train.max_steps", "{} steps"),
        _shown(fields, "train.global_batch_size", "batch {}"),
        _shown(fields, "optim.lr", "lr {:g}"),
    ]
    return f"{what}; " + ", ".join(part for part in shape if part)


def _shown(fields: dict, key: str, form: str) -> str:
    return form.format(fields[key]) if key in fields else ""
