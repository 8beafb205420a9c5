"""How much one request, and the server as a whole, may take: the bounds that keep a prediction
server answering whatever it is sent.

    limits = Limits.from_env()        # LIFTOFF_SERVE_MAX_BATCH_SIZE=1 ... override the defaults
    limits.request_memory_bytes(image_side=384)

Each bound is a setting (`LIFTOFF_SERVE_<FIELD>` in the environment, as Vertex passes a
container's env); a request over one is refused with a 4xx naming the limit, and load over the
queue bounds with a 503, so the server's memory stays within

    the model and one generation batch (max_batch_size rows of at most the model's context)
  + max_inflight_requests x 2 x MAX_BODY_BYTES      request bodies being read and parsed
  + num_decoders x max_image_pixels x 24 bytes       images being decoded (source, RGBA,
                                                     background, composite and RGB at once)
  + max_queued_instances x 3 x side^2 x 4 bytes      decoded images waiting for a batch (VLM)

which `request_memory_bytes` adds up (about 1.5 GB for a 384-pixel VLM with the defaults,
0.2 GB for a language model, whose queued instances are their prompt text, already counted
in the bodies). Generation memory depends on the model; size the machine for the first line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from serving import errors
from serving.errors import RequestError

ENV_PREFIX = "LIFTOFF_SERVE_"
MAX_BODY_BYTES = 1_500_000  # Vertex AI's own limit on an online prediction request
# Peak memory of decoding one image, per pixel, measured for an RGBA PNG (the worst mode).
DECODE_BYTES_PER_PIXEL = 24


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_batch_size: int = 32  # instances per generate call; 1 = one request at a time
    batch_window_ms: float = 5.0  # how long the first request of a batch waits for company
    max_instances: int = 64  # per request
    max_messages: int = 256  # per chat instance
    max_image_bytes: int = 8_000_000  # encoded, per image (inline ones are bounded by the body)
    max_image_pixels: int = 4096 * 4096  # width x height, read from the header before decoding
    num_decoders: int = 2  # images decoded at once, over all requests
    max_queued_instances: int = 256  # admitted and not yet answered; beyond: 503
    max_inflight_requests: int = 64  # predict requests being handled at once; beyond: 503
    request_timeout_s: float = 60.0  # from arrival to answer; then 504
    storage_timeout_s: float = 10.0  # reading one gs:// image; then 504

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(
                    f"{ENV_PREFIX}{f.name.upper()}={value!r} is invalid: must be a number > 0"
                )
        if self.max_queued_instances < self.max_instances:  # a full request could never queue
            raise ValueError(
                f"{ENV_PREFIX}MAX_QUEUED_INSTANCES={self.max_queued_instances} is invalid: must be"
                f" at least {ENV_PREFIX}MAX_INSTANCES ({self.max_instances})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        values = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw, int if f.type == "int" else float)
        return cls(**values)

    def request_memory_bytes(self, *, image_side: int = 0) -> int:
        """The documented bound on what requests hold at once (see the module docstring)."""
        bodies = self.max_inflight_requests * 2 * MAX_BODY_BYTES
        if not image_side:
            return bodies
        decoding = self.num_decoders * self.max_image_pixels * DECODE_BYTES_PER_PIXEL
        return bodies + decoding + self.max_queued_instances * 3 * image_side**2 * 4


def _parse(name: str, raw: str, kind: type) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is invalid: must be {what}") from None


def check_instances(instances: object, limits: Limits) -> list:
    """The request's instances: a non-empty list of at most `max_instances`."""
    if not isinstance(instances, list) or not instances:
        raise RequestError('the body needs "instances": a non-empty list')
    if len(instances) > limits.max_instances:
        raise over_limit(
            f"instances: {len(instances)} in one request",
            limits,
            "max_instances",
            reason=errors.TOO_MANY_INSTANCES,
        )
    return instances


def over_limit(what: str, limits: Limits, name: str, *, reason: str) -> RequestError:
    """A 413 for `what` (e.g. "instances: 65 in one request") over the limit `name`."""
    limit = getattr(limits, name)
    return RequestError(
        f"{what}; the limit is {limit} ({ENV_PREFIX}{name.upper()})", status=413, reason=reason
    )


def check_prompt_tokens(where: str, num_tokens: int, *, params, context: int) -> None:
    """A prompt and its generation budget (`params.num_answer_tokens`) must fit the model's
    context."""
    if num_tokens + params.num_answer_tokens <= context:
        return
    if params.max_new_tokens:
        message = (
            f"{where}: the prompt is {num_tokens} tokens and max_new_tokens is "
            f"{params.max_new_tokens}; together they exceed the model's context of {context} tokens"
        )
    else:
        message = (
            f"{where}: the prompt is {num_tokens} tokens; the model's context of {context} tokens "
            "leaves no room for an answer"
        )
    raise RequestError(message, status=422, reason=errors.PROMPT_TOO_LONG)


def check_prompt_bytes(where: str, text: str, *, max_bytes: int, context: int) -> None:
    """Refuse, before tokenizing it, a prompt that cannot fit: every token stands for at most
    `max_bytes` bytes of text, so a longer text has more tokens than the context holds."""
    try:
        num_bytes = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:  # JSON may carry lone surrogates; no tokenizer takes them
        raise RequestError(f"{where}: the text is not valid Unicode ({err.reason})") from None
    if num_bytes > context * max_bytes:
        raise RequestError(
            f"{where}: the prompt is {num_bytes} bytes, more than the model's context of"
            f" {context} tokens can hold",
            status=422,
            reason=errors.PROMPT_TOO_LONG,
        )
