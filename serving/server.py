"""The Vertex AI custom-container contract as a FastAPI app (served by `python -m serving`).

    python -m serving --model outputs/demo/model --port 8080     # runs create_app under uvicorn

Routes come from AIP_HEALTH_ROUTE (default /health) and AIP_PREDICT_ROUTE (default /predict).
The model loads in a background thread, so the port opens at once and health says 503
`{"status": "loading"}` until it is ready (Vertex polls health before routing traffic), 500
with the error if loading failed. Predict takes `{"instances": [...], "parameters": {...}}` and
answers `{"predictions": [str, ...]}`; a client mistake is a 400 (413 for a body over 1.5 MB)
with `{"error": "one line"}`, and the server keeps serving.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from serving.predictor import Predictor, load_predictor, parse_parameters

MAX_BODY_BYTES = 1_500_000  # Vertex AI's own limit on an online prediction request
BODY_FIELDS = ("instances", "parameters")
TOO_LARGE = f"the body is larger than the limit of {MAX_BODY_BYTES} bytes"


class RequestError(Exception):
    """A client mistake: answered with `status` and a one-line JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelSlot:
    """The predictor once loaded (or the load error), and the lock that serialises generation."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None
        self.error: str | None = None
        # One generation at a time: the model is not thread-safe and a batch already
        # uses every core (or the whole GPU).
        self.lock = threading.Lock()

    def load(self, factory: Callable[[str], Predictor], model_uri: str) -> None:
        start = time.monotonic()
        try:
            predictor = factory(model_uri)
        except Exception as e:
            traceback.print_exc()
            self.error = _one_line(f"loading {model_uri} failed: {type(e).__name__}: {e}")
            return
        self.predictor = predictor
        _log(f"model loaded from {model_uri} in {time.monotonic() - start:.1f} s")

    def generate(self, items: list, params) -> list[str]:
        assert self.predictor is not None  # predict answers 503 until the load finished
        with self.lock:
            return self.predictor.generate(items, params)


def create_app(
    model_uri: str, *, predictor_factory: Callable[[str], Predictor] = load_predictor
) -> FastAPI:
    """The app; `predictor_factory(model_uri)` runs in a thread started at app startup."""
    slot = ModelSlot()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(
            target=slot.load, args=(predictor_factory, model_uri), name="model-loader", daemon=True
        ).start()
        yield

    async def health() -> JSONResponse:
        if slot.error is not None:
            return JSONResponse({"status": "failed", "error": slot.error}, status_code=500)
        if slot.predictor is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def predict(request: Request) -> JSONResponse:
        try:
            instances, parameters = parse_body(await read_body(request))
            params = parse_parameters(parameters)
        except RequestError as e:
            return _error(e.status, str(e))
        except ValueError as e:
            return _error(400, str(e))
        if slot.predictor is None:
            return _error(503, slot.error or "the model is still loading; retry when health is 200")
        try:
            # Which instances are valid depends on the model: text, or image and prompt.
            items = await run_in_threadpool(slot.predictor.parse_instances, instances)
        except ValueError as e:
            return _error(400, str(e))
        try:
            predictions = await run_in_threadpool(slot.generate, items, params)
        except Exception as e:
            traceback.print_exc()
            return _error(500, f"generation failed: {type(e).__name__}: {e}")
        return JSONResponse({"predictions": predictions})

    app = FastAPI(title="liftoff prediction server", lifespan=lifespan)
    app.add_api_route(os.environ.get("AIP_HEALTH_ROUTE", "/health"), health, methods=["GET"])
    app.add_api_route(os.environ.get("AIP_PREDICT_ROUTE", "/predict"), predict, methods=["POST"])
    return app


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) past MAX_BODY_BYTES without buffering the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(413, TOO_LARGE)
    # A chunked body declares no length, so the bytes themselves are counted as they arrive.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(413, TOO_LARGE)
    return bytes(body)


def parse_body(body: bytes) -> tuple[object, object]:
    """(instances, parameters) of a JSON request body; their contents are checked elsewhere."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(400, _one_line(f"the body is not valid JSON: {e}")) from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise RequestError(400, "the body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError(400, 'the body must be a JSON object: {"instances": [...]}')
    unknown = sorted(set(data) - set(BODY_FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; allowed: {', '.join(BODY_FIELDS)}")
    if not isinstance(data.get("instances"), list) or not data["instances"]:
        raise RequestError(400, 'the body needs "instances": a non-empty list')
    return data["instances"], data.get("parameters")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
