"""Typed configs: nested `kw_only` dataclasses, `--set section.field=value` overrides, dicts.

    cfg = apply_overrides(preset(), ["optim.lr=3e-4", "train.max_steps=100"])
    cfg = from_dict(type(cfg), to_dict(cfg))   # what W&B stores and Launch overrides

Every section validates itself in `__post_init__`, so a bad value fails where it is set with a
message naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def check(condition: bool, field: str, value: Any, allowed: str) -> None:
    """Raise the project's one-line config error unless `condition` holds."""
    if not condition:
        raise ValueError(f"{field}={value!r} is invalid: {allowed}")


def check_choice(field: str, value: Any, choices: tuple) -> None:
    check(value in choices, field, value, f"choose one of {', '.join(map(str, choices))}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict, *, where: str = "") -> T:
    """Build `cls` from a nested dict; unknown keys are errors, missing keys keep defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ValueError(f"unknown config field {where + unknown[0]!r}; known: {known}")
    kwargs = {}
    for name, raw in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = from_dict(kind, raw, where=f"{where}{name}.")
        else:
            kwargs[name] = _coerce(raw, kind, f"{where}{name}")
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of `cfg` with each `section.field=value` applied (values parsed by type)."""
    data = to_dict(cfg)
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set {item!r} is invalid: expected section.field=value")
        _set_path(data, path.strip().split("."), value.strip(), item)
    return from_dict(type(cfg), data)


def _set_path(data: dict, keys: list[str], value: str, item: str) -> None:
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise ValueError(f"--set {item!r}: no config section {key!r}")
        node = node[key]
    if keys[-1] not in node or isinstance(node[keys[-1]], dict):
        raise ValueError(f"--set {item!r}: no config field {'.'.join(keys)!r}")
    node[keys[-1]] = value


def _coerce(raw: Any, kind: Any, field: str) -> Any:
    """Convert a string (from the command line) or a JSON value (from W&B) to the field's type."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):  # only `X | None` is used
        if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    if origin is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        inner = typing.get_args(kind)[0]
        return tuple(
            _coerce(i.strip() if isinstance(i, str) else i, inner, field) for i in items if i != ""
        )
    if kind is bool:
        return _to_bool(raw, field)
    if kind in (int, float, str):
        return _to_scalar(raw, kind, field)
    return raw


def _to_bool(raw: Any, field: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    check(text in _TRUE | _FALSE, field, raw, "expected true or false")
    return text in _TRUE


def _to_scalar(raw: Any, kind: type, field: str) -> Any:
    if kind is int and isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # JSON round trips may turn ints into floats
    if kind is int and isinstance(raw, bool | float):
        raise ValueError(f"{field}={raw!r} is invalid: expected an integer")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{field}={raw!r} is invalid: expected {kind.__name__}") from None
