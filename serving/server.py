"""The Vertex AI custom-container contract as a FastAPI app (served by `python -m serving`).

    python -m serving --model outputs/demo/model --port 8080     # runs create_app under uvicorn

Routes come from AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE (`serving.contract`). The model loads
in a background thread, so the port opens at once. Health is readiness: 200 `{"status":
"ready"}` only while the server can answer predictions; 503 with `loading`, `failed` (the load
or the batching thread failed) or `stalled` (one batch has run longer than a request may take).
Predict takes `{"instances": [...], "parameters": {...}}` and answers `{"predictions": [...]}`;
requests are validated and bounded (`serving.limits`) as they arrive, then batched across
clients (`serving.batching`). Every other answer is a JSON error (`serving.errors`), and a bad
request never stops the server from serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from serving import contract, errors
from serving.batching import Batcher
from serving.errors import RequestError, error_body, error_headers
from serving.limits import MAX_BODY_BYTES, Limits
from serving.params import parse_parameters
from serving.predictor import Predictor, load_predictor

BODY_FIELDS = ("instances", "parameters")
TOO_LARGE = f"the body is larger than the limit of {MAX_BODY_BYTES} bytes"


class ModelSlot:
    """The predictor and its batcher once loaded, or why there are none."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.predictor: Predictor | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        # Predict requests being handled, and those of them not yet queued for a batch; only
        # the event loop changes them.
        self.num_inflight = 0
        self.num_arriving = 0

    def load(self, factory: Callable[..., Predictor], model_uri: str) -> None:
        start = time.monotonic()
        try:
            predictor = factory(model_uri, limits=self.limits)
        except Exception as e:
            traceback.print_exc()
            self.error = errors.one_line(f"loading {model_uri} failed: {type(e).__name__}: {e}")
            return
        self.batcher = Batcher(
            predictor.generate,
            max_batch_size=self.limits.max_batch_size,
            window_s=self.limits.batch_window_ms / 1000,
            max_queued=self.limits.max_queued_instances,
            arriving=lambda: self.num_arriving,
        ).start()
        self.predictor = predictor
        _log(f"model loaded from {model_uri} in {time.monotonic() - start:.1f} s")

    @contextlib.contextmanager
    def arriving(self):
        """A request on its way to the batcher: a batch may wait for it (a short window)."""
        self.num_arriving += 1
        try:
            yield
        finally:
            self.num_arriving -= 1
            if self.batcher is not None:
                self.batcher.wake()

    def readiness(self) -> tuple[int, dict]:
        if self.error is not None:
            return 503, {"status": "failed", "error": self.error}
        if self.predictor is None or self.batcher is None:
            return 503, {"status": "loading"}
        if not self.batcher.alive:
            return 503, {"status": "failed", "error": "the batching thread has stopped"}
        busy = self.batcher.busy_for()
        if busy > self.limits.request_timeout_s:
            return 503, {"status": "stalled", "error": f"one batch has run for {busy:.0f} s"}
        return 200, {"status": "ready"}

    def ready(self) -> tuple[Predictor, Batcher]:
        status, body = self.readiness()
        if status != 200:
            detail = body.get("error") or "the model is still loading; retry when health is 200"
            raise RequestError(detail, status=503, reason=errors.NOT_READY)
        assert self.predictor is not None and self.batcher is not None
        return self.predictor, self.batcher


def create_app(
    model_uri: str,
    *,
    predictor_factory: Callable[..., Predictor] = load_predictor,
    limits: Limits | None = None,
) -> FastAPI:
    """The app; `predictor_factory(model_uri, limits=...)` runs in a thread started at app
    startup. `app.state.slot` is the model slot (its predictor and batcher, once loaded)."""
    limits = limits or Limits.from_env()
    slot = ModelSlot(limits)
    _one_line_logs("gcsfs")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(
            target=slot.load, args=(predictor_factory, model_uri), name="model-loader", daemon=True
        ).start()
        yield
        if slot.batcher is not None:
            slot.batcher.stop()

    async def health() -> JSONResponse:
        status, body = slot.readiness()
        return JSONResponse(body, status_code=status)

    async def predict(request: Request) -> JSONResponse:
        deadline = time.monotonic() + limits.request_timeout_s
        try:
            if slot.num_inflight >= limits.max_inflight_requests:
                raise _overloaded(slot.num_inflight)
            slot.num_inflight += 1
            try:
                predictions = await _predict(slot, request, deadline)
            finally:
                slot.num_inflight -= 1
        except RequestError as e:
            return error_response(e.status, e.reason, str(e))
        return JSONResponse({"predictions": predictions})

    # No redirect from "/predict/" to "/predict": a redirect is no answer for a prediction client.
    app = FastAPI(title="liftoff prediction server", lifespan=lifespan, redirect_slashes=False)
    app.state.slot = slot
    app.add_api_route(contract.health_route(), health, methods=["GET"])
    app.add_api_route(contract.predict_route(), predict, methods=["POST"])
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


async def _predict(slot: ModelSlot, request: Request, deadline: float) -> list:
    with slot.arriving():
        instances, parameters = parse_body(await read_body(request))
        predictor, batcher = slot.ready()
        params = parse_parameters(parameters, schema=predictor.parameters)
        # The default max_new_tokens becomes a number here: batches group by what they generate.
        prepared = run_in_threadpool(predictor.prepare, instances, params)
        items, params = await _before(deadline, prepared)
        future = batcher.submit(items, params, deadline=deadline)
    try:
        # wrap_future: a client that times out here cancels its place in the queue.
        return await _before(deadline, asyncio.wrap_future(future))
    except RequestError:
        raise
    except Exception as e:  # the model failed on this request; the traceback is in the log
        if type(e).__name__ == "OutOfMemoryError":
            raise RequestError(
                "out of accelerator memory; retry shortly", status=503, reason=errors.OVERLOADED
            ) from None
        raise RequestError(
            f"generation failed: {type(e).__name__}: {e}", status=500, reason=errors.INTERNAL
        ) from None


async def _before(deadline: float, awaitable):
    try:
        return await asyncio.wait_for(awaitable, timeout=max(deadline - time.monotonic(), 0))
    except TimeoutError:
        raise RequestError(
            "no answer within the request timeout (LIFTOFF_SERVE_REQUEST_TIMEOUT_S)",
            status=504,
            reason=errors.DEADLINE_EXCEEDED,
        ) from None


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) past MAX_BODY_BYTES without buffering the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(TOO_LARGE, status=413, reason=errors.BODY_TOO_LARGE)
    # A chunked body declares no length, so the bytes themselves are counted as they arrive.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(TOO_LARGE, status=413, reason=errors.BODY_TOO_LARGE)
    return bytes(body)


def parse_body(body: bytes) -> tuple[object, object]:
    """(instances, parameters) of a JSON request body; their contents are checked elsewhere."""
    try:
        data = json.loads(body)
    except RecursionError:  # nesting deeper than the parser's stack
        raise RequestError(
            "the body is not valid JSON: nested too deeply", reason=errors.INVALID_JSON
        ) from None
    except ValueError as e:  # also bad UTF-8, and integers past Python's 4300-digit limit
        raise RequestError(f"the body is not valid JSON: {e}", reason=errors.INVALID_JSON) from None
    if not isinstance(data, dict):
        raise RequestError('the body must be a JSON object: {"instances": [...]}')
    unknown = sorted(set(data) - set(BODY_FIELDS))
    if unknown:
        raise RequestError(f"unknown field {unknown[0][:40]!r}; allowed: {', '.join(BODY_FIELDS)}")
    if not isinstance(data.get("instances"), list) or not data["instances"]:
        raise RequestError('the body needs "instances": a non-empty list')
    return data["instances"], data.get("parameters")


def error_response(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse(
        error_body(status, reason, message), status_code=status, headers=error_headers(status)
    )


def _overloaded(num_inflight: int) -> RequestError:
    return RequestError(
        f"the server is at capacity ({num_inflight} requests in flight, "
        "LIFTOFF_SERVE_MAX_INFLIGHT_REQUESTS); retry shortly",
        status=503,
        reason=errors.OVERLOADED,
    )


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    answer = error_response(
        exc.status_code, reason, f"{request.method} {request.url.path}: {exc.detail}"
    )
    answer.headers.update(exc.headers or {})  # a 405 says which methods there are (Allow)
    return answer


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback after this answer; the client gets JSON, not plain text.
    return error_response(500, errors.INTERNAL, f"internal error: {type(exc).__name__}")


class _NoTraceback(logging.Filter):
    """Keeps a record's message, drops its traceback: gcsfs logs every storage error it gives
    up on with one, and the server already says what failed in one line (serving.images)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def _one_line_logs(name: str) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, _NoTraceback) for f in logger.filters):
        logger.addFilter(_NoTraceback())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
