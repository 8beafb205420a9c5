"""The parameters every liftoff training pipeline takes, declared once, and `--param k=v` parsing.

    params = declared(pipeline)                   # [Param(name, type, default, description), ...]
    kinds = {p.name: p.kind for p in params}      # {"max_steps": "NUMBER_INTEGER", ...}
    parse_params(["max_steps=100", "lora=true"], kinds)   # -> {"max_steps": 100, "lora": True}

The pipeline factory (pipelines/declaration.py) turns this list into the pipeline function's
signature and its docstring, so each description is compiled into the IR
(`root.inputDefinitions.parameters.NAME.description`) and shown by the Vertex console. A
pipeline's declaration fills in the defaults that differ between pipelines. Lists and dicts take
JSON on the command line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from trainers.common.config import suggest

# Python type -> KFP's parameter type name in the IR.
KINDS = {
    str: "STRING",
    int: "NUMBER_INTEGER",
    float: "NUMBER_DOUBLE",
    bool: "BOOLEAN",
    list: "LIST",
    dict: "STRUCT",
}


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any
    description: str

    @property
    def kind(self) -> str:
        return KINDS[self.type]


# A default each pipeline declares (see `declared`).
FROM_PIPELINE: Any = None  # no value of its own; never a real default

PARAMETERS = (
    Param("preset", str, "debug", "trainer preset, e.g. debug (a tiny model, synthetic data)"),
    Param(
        "data",
        str,
        "",
        "training records, JSONL or Parquet (a file or a directory), gs:// or /gcs/ on Vertex; "
        "empty: the preset's own data",
    ),
    Param("eval_data", str, "", "eval records; empty: a content-hash split of data"),
    Param("overrides", list, [], "trainer config overrides, section.field=value (as --set)"),
    Param("max_steps", int, 0, "optimizer steps; 0 keeps the preset's"),
    Param("seed", int, -1, "random seed; -1 keeps the preset's"),
    Param("lora", bool, False, "train LoRA adapters instead of every weight"),
    Param(
        "on_bad_record",
        str,
        "error",
        "a malformed record: error (stop, naming file:line) or skip (count it)",
    ),
    Param(
        "gate_metric",
        str,
        FROM_PIPELINE,
        "the eval metric the gate compares, higher is better: {gate_metrics}",
    ),
    Param(
        "gate_threshold", float, FROM_PIPELINE, "register and deploy only if gate_metric >= this"
    ),
    Param("model_name", str, FROM_PIPELINE, "the registered model's name"),
    Param("version_aliases", list, [], "aliases of the new model version"),
    Param(
        "default_version",
        bool,
        True,
        "Vertex: the new version becomes the model's default (a retrain with parent_model)",
    ),
    Param("model_labels", dict, {}, "labels of the new model version (GCP label rules)"),
    Param("sample_instances", list, FROM_PIPELINE, "instances the deploy check sends to the model"),
    Param("wandb_project", str, "liftoff", "W&B project; empty: no W&B runs"),
    Param(
        "wandb_secret",
        str,
        "",
        "Secret Manager version holding the W&B API key (projects/P/secrets/NAME/versions/V), "
        "read at start by each step with the job's service account",
    ),
    Param(
        "hf_secret",
        str,
        "",
        "Secret Manager version holding a Hugging Face token for gated models, read like "
        "wandb_secret by each step that loads a model and by the serving container",
    ),
    Param(
        "parent_model",
        str,
        "",
        "Vertex: projects/P/locations/R/models/ID to upload the model as a new version of",
    ),
    Param("endpoint", str, "", "Vertex: an Endpoint resource name; empty: a new Endpoint"),
    Param(
        "traffic_split",
        dict,
        {"0": 100},
        'Vertex: the Endpoint\'s traffic split after the deploy; "0" is the new model',
    ),
)


def declared(pipeline, *, defaults: dict | None = None) -> list[Param]:
    """`PARAMETERS` with `pipeline`'s own defaults (its `own_defaults()`; the samples under its
    `samples_param` name), then `defaults` (a compile's `--param`s) over them."""
    own = {**pipeline.own_defaults(), **(defaults or {})}
    params = []
    for param in PARAMETERS:
        name = pipeline.samples_param if param.name == "sample_instances" else param.name
        default = own.get(name, param.default)
        assert default is not FROM_PIPELINE, f"{pipeline.name} declares no default for {name}"
        description = param.description.format(gate_metrics=", ".join(pipeline.gate_metrics))
        params.append(
            dataclasses.replace(
                param, name=name, default=copy.deepcopy(default), description=description
            )
        )
    return params


def parse_params(items: list[str], kinds: dict[str, str]) -> dict:
    """`kinds`: each parameter's KFP type name (`Param.kind`)."""
    values = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        if name not in kinds:
            known = ", ".join(sorted(kinds))
            hint = suggest(name, kinds)
            raise ValueError(f"--param {name}: unknown parameter{hint} (parameters: {known})")
        values[name] = _coerce(name, raw, kinds[name])
    return values


def _coerce(name: str, raw: str, kind: str):
    try:
        if kind == "NUMBER_INTEGER":
            return int(raw)
        if kind == "NUMBER_DOUBLE":
            return float(raw)
        if kind == "BOOLEAN":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if kind in ("LIST", "STRUCT"):
            value = json.loads(raw)
            if not isinstance(value, list if kind == "LIST" else dict):
                raise ValueError
            return value
    except ValueError:
        want = {
            "NUMBER_INTEGER": "an integer",
            "NUMBER_DOUBLE": "a number",
            "BOOLEAN": "true or false",
            "LIST": "a JSON list",
            "STRUCT": "a JSON object",
        }[kind]
        raise ValueError(f"--param {name}={raw!r}: expected {want}") from None
    return raw
