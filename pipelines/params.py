"""Pipeline parameters from the command line: `--param k=v` typed by the pipeline's signature.

    parse_params(["max_steps=100", "lora=true"], declared)   # -> {"max_steps": 100, "lora": True}

`declared` maps a parameter name to its KFP type (STRING, NUMBER_INTEGER, NUMBER_DOUBLE,
BOOLEAN, LIST, STRUCT), read from the compiled pipeline spec. Lists and dicts take JSON.
"""

from __future__ import annotations

import json


def declared_params(pipeline_func) -> dict[str, str]:
    spec = pipeline_func.pipeline_spec.root.input_definitions.parameters
    from kfp.pipeline_spec import pipeline_spec_pb2

    kinds = pipeline_spec_pb2.ParameterType.ParameterTypeEnum
    return {name: kinds.Name(p.parameter_type) for name, p in spec.items()}


def parse_params(items: list[str], declared: dict[str, str]) -> dict:
    values = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        if name not in declared:
            known = ", ".join(sorted(declared))
            raise ValueError(f"--param {name}: unknown parameter; known: {known}")
        values[name] = _coerce(name, raw, declared[name])
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
