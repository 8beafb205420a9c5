"""A request's `parameters`: how to generate, validated over every value's range.

    params = parse_parameters({"max_new_tokens": 32, "temperature": 0.7, "top_p": 0.9})

Greedy by default (temperature 0), so answers are reproducible. Without `max_new_tokens` a
request gets up to DEFAULT_MAX_NEW_TOKENS, as many as the model's context leaves after its
longest prompt (`fitted`); a number asked for must fit, or the request is refused (422).
Anything out of range is a RequestError (HTTP 400) naming the parameter, its value and what is
allowed: a temperature of 1e-300 would turn every logit into infinity and the sampler would
fail mid-batch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from serving.errors import RequestError

MAX_NEW_TOKENS_LIMIT = 2048
DEFAULT_MAX_NEW_TOKENS = 64
# Below this, logits / temperature overflows float32 for ordinary logits (|logit| ~ 40).
MIN_TEMPERATURE = 0.01
MAX_TEMPERATURE = 100.0


@dataclass(frozen=True, kw_only=True)
class Generation:
    """Frozen and hashable: requests with equal settings share a batch."""

    max_new_tokens: int | None = None  # None: as many as fit, up to DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0

    @property
    def num_answer_tokens(self) -> int:
        """The tokens a prompt must leave room for in the context."""
        return self.max_new_tokens or 1

    def fitted(self, *, longest_prompt: int, context: int) -> Generation:
        """These settings with `max_new_tokens` decided: the default is cut to what fits."""
        if self.max_new_tokens is not None:
            return self
        room = max(1, min(DEFAULT_MAX_NEW_TOKENS, context - longest_prompt))
        return dataclasses.replace(self, max_new_tokens=room)

    def check(self) -> None:
        """RequestError naming the first value out of range; a subclass (a predictor's own
        parameters) checks its fields after these."""
        _check(self)


def parse_parameters(parameters: object, *, schema: type[Generation] = Generation) -> Generation:
    """The request's `parameters` (None or an object) as validated settings of `schema`:
    Generation, or the subclass a predictor declares for parameters of its own."""
    if parameters is None:
        return schema()
    if not isinstance(parameters, dict):
        raise RequestError(f"parameters must be an object, got {kind(parameters)}")
    known = [f.name for f in fields(schema)]
    for name in parameters:
        if name not in known:
            raise RequestError(f"parameters.{name} is unknown; allowed: {', '.join(known)}")
    params = schema(**parameters)
    params.check()
    return params


def _check(params: Generation) -> None:
    n, t, p = params.max_new_tokens, params.temperature, params.top_p
    # bool is an int subclass: `true` must not pass as 1 token.
    if n is None:
        pass
    elif isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS_LIMIT:
        bad_value("max_new_tokens", n, f"an integer from 1 to {MAX_NEW_TOKENS_LIMIT}")
    if not is_number(t) or not (t == 0 or MIN_TEMPERATURE <= t <= MAX_TEMPERATURE):
        bad_value(
            "temperature",
            t,
            f"0 (greedy) or a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE:g}",
        )
    if not is_number(p) or not 0 < p <= 1:
        bad_value("top_p", p, "a number with 0 < top_p <= 1")


def is_number(value: object) -> bool:
    # JSON allows NaN/Infinity through Python's parser, and integers too large for a float.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def bad_value(name: str, value: object, allowed: str, *, where: str = "parameters") -> None:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise RequestError(f"{where}.{name}={shown} is invalid: {allowed}")


def kind(value: object) -> str:
    """A JSON value's type for an error message."""
    return "null" if value is None else type(value).__name__
