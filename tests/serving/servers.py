"""Real prediction servers on loopback for the serving tests.

    with serve_text(loaded, max_batch_size=1) as (server, batches):
        server.predict(["hi"], {"max_new_tokens": 4})      # (status, JSON body)
        batches.sizes                                      # instances per generate call

`ThreadServer` runs uvicorn from a thread on a port the OS picked. `serve_text` builds the app
around an already loaded tiny model (so each test's server starts in milliseconds) with the
limits the test asks for; `Batches` wraps the predictor's `generate` (the real one still runs)
to record every batch, and can hold the next one until released, so a test can line requests
up behind it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from serving import contract
from serving.limits import Limits
from serving.server import create_app
from serving.text import TextPredictor

WAIT_S = 120


class ThreadServer:
    """uvicorn serving `app` from a thread, on a port the OS picked (no race to find one)."""

    def __init__(self, app):
        self.app = app
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, args=([sock],), daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def slot(self):
        return self.app.state.slot

    def call(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
        """(status, JSON body) of one request; `body` may be bytes or an iterable (chunked)."""
        status, answer, _ = self.exchange(method, path, body, headers)
        return status, answer

    def exchange(self, method: str, path: str, body=None, headers=None):
        """(status, JSON body, headers); the body must be JSON, whatever the status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            assert response.getheader("content-type") == "application/json", raw[:200]
            return response.status, json.loads(raw), dict(response.getheaders())
        finally:
            conn.close()

    def predict(self, instances, parameters=None, path: str = "/predict") -> tuple[int, dict]:
        payload = {"instances": instances, **({"parameters": parameters} if parameters else {})}
        return self.call("POST", path, json.dumps(payload).encode())

    def wait_loaded(self, path: str = "/health") -> tuple[int, dict]:
        """The first health answer that is not 503 loading."""
        answer = self.call("GET", path)
        deadline = time.monotonic() + WAIT_S
        while answer == (503, {"status": "loading"}) and time.monotonic() < deadline:
            time.sleep(0.02)
            answer = self.call("GET", path)
        return answer


def wait_for(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.01)


class Batches:
    """A predictor's generate calls: instances and parameters of each; `hold()` makes the next
    call wait (`entered` is set once it does) until `release()`."""

    def __init__(self, predictor) -> None:
        self.calls: list[tuple[int, object]] = []
        self.entered = threading.Event()
        self._gate: threading.Event | None = None
        self._generate = predictor.generate
        predictor.generate = self

    @property
    def sizes(self) -> list[int]:
        return [n for n, _ in self.calls]

    def hold(self) -> None:
        self._gate = threading.Event()
        self.entered.clear()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    def __call__(self, items: list, params) -> list[str]:
        gate = self._gate
        if gate is not None:
            self.entered.set()
            assert gate.wait(timeout=WAIT_S)
        answers = self._generate(items, params)
        self.calls.append((len(items), params))
        return answers


@contextlib.contextmanager
def serve_text(loaded, **limits):
    """A server of the already loaded (model, tokenizer) with these `Limits` fields."""
    model, tokenizer = loaded
    holder = {}

    def factory(uri: str, *, limits: Limits) -> TextPredictor:
        device = str(model.device)
        predictor = TextPredictor(model, tokenizer, device=device, model_dir=uri, limits=limits)
        holder["batches"] = Batches(predictor)
        return predictor

    app = create_app("tiny", predictor_factory=factory, limits=Limits(**limits))
    with ThreadServer(app) as running:
        assert running.wait_loaded(contract.health_route()) == (200, {"status": "ready"})
        try:
            yield running, holder["batches"]
        finally:
            holder["batches"].release()


def line_up(server, batches: Batches, first: tuple, requests: list[tuple]) -> list:
    """Hold the `first` (instances, parameters) request inside the model, queue `requests`
    behind it in order, then let go: the (status, body) of every request, the first one's
    first."""
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        batches.hold()
        held = pool.submit(server.predict, *first)
        assert batches.entered.wait(WAIT_S)
        queued, expected = [], len(first[0])
        for request in requests:  # one at a time, so they queue in this order
            queued.append(pool.submit(server.predict, *request))
            expected += len(request[0])
            wait_for(lambda n=expected: server.slot.batcher.num_queued == n, "a request to queue")
        batches.release()
        return [f.result(timeout=WAIT_S) for f in [held, *queued]]
