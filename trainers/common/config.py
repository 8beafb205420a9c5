"""Typed configs: nested `kw_only` dataclasses, `--set section.field=value` overrides, dicts.

    cfg = apply_overrides(preset(), ["optim.lr=3e-4", "train.max_steps=100"])
    cfg = from_dict(type(cfg), to_dict(cfg))   # what W&B stores and Launch overrides
    cfg = apply_recipe(preset(), read_recipe("recipe.yaml"), source="recipe.yaml")  # --config
    print(to_recipe(cfg))                      # --print-config: a recipe of the whole config

A recipe is a YAML file of the same fields as `--set`, by section (`optim: {lr: 1e-4}`) or
dotted (`optim.lr: 1e-4`), and optionally the `preset` it starts from.

Every section validates itself in `__post_init__`, so a bad value fails where it is set with a
`ConfigError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad setting: the message is one line naming the field, the value and what is allowed.
    Entrypoints print it without a traceback, wherever in a run it is found."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def check(condition: bool, field: str, value: Any, allowed: str) -> None:
    """Raise the project's one-line config error unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{field}={value!r} is invalid: {allowed}")


def check_choice(field: str, value: Any, choices: tuple) -> None:
    check(value in choices, field, value, f"choose one of {', '.join(map(str, choices))}")


def suggest(name: str, choices, *, prefix: str = "") -> str:
    """The hint "; did you mean 'X'?" for the choice closest to a mistyped `name` (shown after
    `prefix`, e.g. its section), or ""."""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict, *, where: str = "") -> T:
    """Build `cls` from a nested dict; unknown keys are errors, missing keys keep defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        known = ", ".join(sorted(names))
        hint = suggest(unknown[0], names, prefix=where)
        raise ConfigError(f"unknown config field {where + unknown[0]!r}{hint} (known: {known})")
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
            raise ConfigError(f"--set {item!r} is invalid: expected section.field=value")
        _set_path(data, path.strip().split("."), value.strip(), item)
    return from_dict(type(cfg), data)


def _set_path(data: dict, keys: list[str], value: str, item: str) -> None:
    node = data
    for depth, key in enumerate(keys[:-1]):
        if not isinstance(node.get(key), dict):
            where = "".join(f"{k}." for k in keys[:depth])
            sections = [k for k, v in node.items() if isinstance(v, dict)]
            known = f"{where.rstrip('.')} has no sections"
            if sections:
                known = "sections: " + ", ".join(where + k for k in sections)
            if key in node:
                known = f"{where + key} is a field"
            hint = "" if key in node else suggest(key, sections, prefix=where)
            raise ConfigError(f"--set {item!r}: no config section {key!r}{hint} ({known})")
        node = node[key]
    if keys[-1] not in node or isinstance(node[keys[-1]], dict):
        fields = [k for k, v in node.items() if not isinstance(v, dict)]
        where = "".join(f"{k}." for k in keys[:-1])
        hint = suggest(keys[-1], fields, prefix=where)
        raise ConfigError(
            f"--set {item!r}: no config field {where + keys[-1]!r}{hint} "
            f"({'.'.join(keys[:-1]) or 'top-level'} fields: {', '.join(fields)})"
        )
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
        raise ConfigError(f"{field}={raw!r} is invalid: expected an integer")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}={raw!r} is invalid: expected {kind.__name__}") from None


def read_recipe(path: str) -> dict:
    """The recipe file at `path` (local, gs:// or /gcs/) as nested sections; a ConfigError
    naming the file when it is missing or not a mapping of fields."""
    import yaml

    from trainers.common import storage

    try:
        data = yaml.safe_load(storage.read_text(path))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: not YAML: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected config fields (section: {{field: value}})")
    nested: dict = {}
    for key, value in data.items():
        *sections, name = str(key).split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        if isinstance(value, dict) and isinstance(node.get(name), dict):
            node[name].update(value)
        else:
            node[name] = value
    return nested


def apply_recipe(cfg: T, recipe: dict, *, source: str) -> T:
    """`cfg` with the recipe's fields (all but `preset`, the one it starts from) set."""
    data = to_dict(cfg)
    try:
        _merge(data, {k: v for k, v in recipe.items() if k != "preset"}, where="")
        return from_dict(type(cfg), data)
    except ConfigError as err:
        raise ConfigError(f"--config {source}: {err}") from None


def _merge(data: dict, recipe: dict, *, where: str) -> None:
    for key, value in recipe.items():
        if key not in data:
            known = ", ".join(data)
            hint = suggest(key, data, prefix=where)
            raise ConfigError(f"unknown config field {where + key!r}{hint} (known: {known})")
        if isinstance(data[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where + key} is a section: give its fields ({key}: {{...}})")
            _merge(data[key], value, where=f"{where}{key}.")
        else:
            data[key] = value


def flat_fields(data: dict, *, where: str = "") -> dict[str, Any]:
    """A nested config dict as {"section.field": value}."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flat_fields(value, where=f"{where}{key}."))
        else:
            flat[where + key] = value
    return flat


def override_text(value: Any) -> str:
    """A value as `--set section.field=VALUE` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(override_text(v) for v in value)
    return "none" if value is None else str(value)


def to_recipe(cfg: Any, *, preset: str, comment: str = "") -> str:
    """The whole config as a recipe (YAML by section) that starts from preset `preset` (the
    config's own `preset` field may name its model instead); `comment` heads it."""
    import yaml

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(value) if isinstance(value, tuple) else value

    data = plain(to_dict(cfg)) | {"preset": preset}
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return "".join(f"# {line}\n" for line in comment.splitlines()) + text
