"""Recipes on pipelines: `liftoff run/compile/submit PIPELINE --config recipe.yaml` and
`--print-config`. A recipe is the file the trainers take (`python -m trainers.llm --config`,
read by trainers/common/config.py): YAML of the trainer's config fields by section, and
optionally the preset it starts from.

    params = recipe_params(pipeline, "examples/llm/recipe.yaml")
    # {"preset": "debug", "max_steps": 60, "overrides": ["optim.lr=0.002"]}
    print(recipe_text(pipeline, {"preset": "debug", "overrides": ["optim.lr=2e-3"]}))

A field the pipeline has a parameter for becomes that parameter (`train.max_steps` ->
`max_steps`, `data.train` -> `data`, ...: pipelines/preflight.py's PARAM_FIELDS); every other
field that differs from the preset becomes an `overrides` entry. The directories a run writes
to (`output_dir`, `checkpoint.dir`) are the pipeline's, per run: a recipe's are not used.
Flags win over the file: `--preset`, `--param` and `--set` (pipelines/commands.py).
"""

from __future__ import annotations

from pipelines.preflight import PARAM_FIELDS, trainer_config
from trainers.common.config import (
    apply_recipe,
    flat_fields,
    override_text,
    read_recipe,
    to_dict,
    to_recipe,
)

RUN_FIELDS = ("output_dir", "checkpoint.dir", "preset")  # set per run, or the base itself
_FIELD_PARAMS = {field: param for param, field in PARAM_FIELDS.items()}


def recipe_params(pipeline, path: str) -> dict:
    """The pipeline parameters the recipe at `path` makes, `overrides` always among them."""
    recipe = read_recipe(path)
    declared = {p.name: p for p in pipeline.parameters()}
    preset = recipe.get("preset") or declared["preset"].default
    base = pipeline.presets(preset)
    before = flat_fields(to_dict(base))
    after = flat_fields(to_dict(apply_recipe(base, recipe, source=path)))
    params: dict = {"preset": preset} if "preset" in recipe else {}
    overrides = []
    for field, value in after.items():
        if value == before[field] or field in RUN_FIELDS:
            continue
        if field in _FIELD_PARAMS:
            param = declared[_FIELD_PARAMS[field]]
            params[param.name] = param.type(value)
        else:
            overrides.append(f"{field}={override_text(value)}")
    return params | {"overrides": overrides}


def recipe_text(pipeline, params: dict, *, command: str = "") -> str:
    """The trainer config a run with `params` trains with, as a recipe."""
    values = {p.name: p.default for p in pipeline.parameters()} | params
    comment = (
        f"the trainer config of: {command}\n" if command else ""
    ) + "(data, model and checkpoint paths are set per run by the pipeline)"
    return to_recipe(trainer_config(pipeline, values), preset=values["preset"], comment=comment)
