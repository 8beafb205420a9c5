"""What the server answers when it does not answer with predictions: one JSON shape for every
error, whatever raised it.

    raise RequestError("instances: 40000 in one request; the limit is 64",
                       status=413, reason="too_many_instances")
    # -> HTTP 413 {"error": {"code": 413, "reason": "too_many_instances", "message": "..."}}

`code` repeats the HTTP status, `reason` is a stable snake_case word a client can branch on,
`message` is one line for a person. Client mistakes are 400 (malformed), 413 (too large) or
422 (well formed but more than this model can take); the server's own trouble is 502 (storage
answered with an error), 503 (not ready, overloaded; with Retry-After) or 504 (storage or the
request's deadline ran out).
"""

from __future__ import annotations

# Reasons, by status.
INVALID_JSON = "invalid_json"  # 400
INVALID_REQUEST = "invalid_request"  # 400: structure, types, parameter ranges, instances
INVALID_IMAGE = "invalid_image"  # 400: does not decode, or names nothing readable
BODY_TOO_LARGE = "body_too_large"  # 413
TOO_MANY_INSTANCES = "too_many_instances"  # 413
TOO_MANY_MESSAGES = "too_many_messages"  # 413
IMAGE_TOO_LARGE = "image_too_large"  # 413
PROMPT_TOO_LONG = "prompt_too_long"  # 422
STORAGE_ERROR = "storage_error"  # 502
NOT_READY = "not_ready"  # 503
OVERLOADED = "overloaded"  # 503
DEADLINE_EXCEEDED = "deadline_exceeded"  # 504
STORAGE_TIMEOUT = "storage_timeout"  # 504
INTERNAL = "internal"  # 500: a bug, with its traceback in the server's log

RETRY_AFTER_S = 1


class RequestError(ValueError):
    """A request the server will not answer with predictions. A ValueError, so in-process
    callers of `predict` see a bad instance as before; `status` says whose fault it is."""

    def __init__(self, message: str, *, status: int = 400, reason: str = INVALID_REQUEST):
        super().__init__(one_line(message))
        self.status = status
        self.reason = reason


def error_body(status: int, reason: str, message: str) -> dict:
    return {"error": {"code": status, "reason": reason, "message": one_line(message)}}


def error_headers(status: int) -> dict[str, str]:
    """503s say when to come back; Vertex and HTTP clients honour Retry-After."""
    return {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}


def one_line(text: str) -> str:
    return " ".join(str(text).split())
