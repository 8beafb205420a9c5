"""The list filters of Google APIs (AIP-160, and Cloud Logging's query language, which reads the
same for what liftoff sends), parsed and evaluated by the loopback fakes.

    match = parse_filter('pipeline_name="llm-finetune" AND labels.team="ml"')
    match(lambda path: {"pipeline_name": "llm-finetune", "labels.team": "ml"}[path])  # True
    jobs = select(fake.jobs, 'state="PIPELINE_STATE_FAILED"', parent=parent,
                  fields={"state": ("state",)})

Terms are `PATH OP VALUE` (OP one of = != < <= > >= :), combined with AND, OR (which binds
tighter, as in both languages), NOT and parentheses; juxtaposed terms are ANDed. VALUE is a
quoted string or a bare word. `field(path)` returns the resource's value at PATH (a string,
number, datetime, or None when absent); the fake raises KeyError for a path it does not know,
which it answers as Google does: 400 INVALID_ARGUMENT. A bare word is compared as the field's
type: a datetime field parses it as RFC 3339, a severity field by rank.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Field = Callable[[str], Any]
Match = Callable[[Field], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<paren>[()])'
    r"|(?P<word>[^\s()<>=!:\"]+))"
)
SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT")
SEVERITIES += ("EMERGENCY",)


def parse_filter(text: str) -> Match:
    """A predicate over a resource's fields; ValueError for a filter that does not parse."""
    tokens = _tokens(text)
    if not tokens:
        return lambda field: True
    match, rest = _and(tokens)
    if rest:
        raise ValueError(f"unexpected {rest[0][1]!r} in filter {text!r}")
    return match


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while text[position:].strip():
        found = _TOKEN.match(text, position)
        if not found:
            raise ValueError(f"cannot parse filter {text!r} at {text[position:]!r}")
        tokens.append(next((k, v) for k, v in found.groupdict().items() if v is not None))
        position = found.end()
    return tokens


def _and(tokens):
    # Both languages bind OR tighter than AND: `a AND b OR c` is `a AND (b OR c)`.
    terms = []
    term, tokens = _any_of(tokens)
    terms.append(term)
    while tokens and tokens[0] != ("paren", ")"):
        if tokens[0] == ("word", "AND"):
            tokens = tokens[1:]
        term, tokens = _any_of(tokens)
        terms.append(term)
    return (lambda field: all(t(field) for t in terms)), tokens


def _any_of(tokens):
    terms = []
    term, tokens = _unary(tokens)
    terms.append(term)
    while tokens and tokens[0] == ("word", "OR"):
        term, tokens = _unary(tokens[1:])
        terms.append(term)
    return (lambda field: any(t(field) for t in terms)), tokens


def _unary(tokens):
    if not tokens:
        raise ValueError("filter ends where a term was expected")
    if tokens[0] == ("word", "NOT"):
        term, rest = _unary(tokens[1:])
        return (lambda field: not term(field)), rest
    if tokens[0] == ("paren", "("):
        inner, rest = _and(tokens[1:])
        if not rest or rest[0] != ("paren", ")"):
            raise ValueError("unbalanced parentheses in filter")
        return inner, rest[1:]
    return _comparison(tokens)


def _comparison(tokens):
    if len(tokens) < 3 or tokens[0][0] not in ("word", "string") or tokens[1][0] != "op":
        raise ValueError(f"expected PATH OP VALUE, got {[v for _, v in tokens[:3]]}")
    path, op, (kind, raw) = _path(tokens[0][1]), tokens[1][1], tokens[2]
    literal = _unquote(raw) if kind == "string" else raw
    return (lambda field: _compare(field(path), op, literal, path=path)), tokens[3:]


def _path(raw: str) -> str:
    # `labels."ml.googleapis.com/x"` names one key that itself has dots.
    return raw.replace('"', "")


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _compare(value, op: str, literal: str, *, path: str) -> bool:
    if op == ":":
        return value is not None and literal.strip("*") in str(value)
    if value is None:
        return op == "!="
    left, right = _typed(value, literal, path=path)
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _typed(value, literal: str, *, path: str):
    if isinstance(value, datetime):
        return value, parse_time(literal)
    if path == "severity":
        return SEVERITIES.index(value), SEVERITIES.index(literal)
    if isinstance(value, int | float):
        return value, float(literal)
    return str(value), literal


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def select(
    resources: Mapping[str, dict], text: str, *, parent: str, fields: Mapping[str, tuple]
) -> list[dict]:
    """The resources named under `parent` that match filter `text`. `fields`: each filterable
    path -> the keys of its value in a resource (a `*_time` one read as a time); `labels.KEY`
    always. ValueError for a filter that does not parse or names another field."""
    match = parse_filter(text)

    def field(resource: dict, path: str):
        if path.startswith("labels."):
            return resource.get("labels", {}).get(path.removeprefix("labels."))
        if path not in fields:
            raise ValueError(f"unsupported filter field {path!r}")
        value = resource
        for key in fields[path]:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        if path.endswith("_time") and value:
            return parse_time(value)
        return value if value != {} else None

    return [
        resource
        for name, resource in resources.items()
        if name.startswith(parent + "/") and match(lambda path, r=resource: field(r, path))
    ]
