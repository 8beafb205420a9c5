"""The prediction server as a child process on loopback: the local target's deploy step.

    with LocalServer("outputs/demo/model") as server:
        server.wait_healthy()
        print(server.predict(["What is 2 + 3?"], {"max_new_tokens": 8}))

The child is `python -m serving` configured through the same AIP_* variables Vertex AI sets,
so the local deploy exercises the container's own entrypoint and contract.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

import serving
from serving import contract

TAIL_LINES = 40
STOP_GRACE_S = 10.0
# No proxy for loopback: an HTTP(S)_PROXY in the environment must not see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """The server answered a request with an error status."""

    def __init__(self, status: int, message: str, *, reason: str = ""):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.reason = reason


class LocalServer:
    """`python -m serving` for `model_uri` on a free 127.0.0.1 port; `start()` or `with`."""

    def __init__(
        self, model_uri: str, *, env: Mapping[str, str] | None = None, args: Sequence[str] = ()
    ):
        self.model_uri = model_uri
        self.args = list(args)  # more `python -m serving` flags
        self.env = {**os.environ, **(env or {})}
        self.health_route = contract.health_route(self.env)
        self.predict_route = contract.predict_route(self.env)
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self.port = _free_port()
        env = {
            **self.env,
            contract.STORAGE_URI_ENV: self.model_uri,
            contract.PORT_ENV: str(self.port),
            # The child imports this same checkout of `serving`, installed or not.
            "PYTHONPATH": os.pathsep.join(filter(None, [_code_root(), self.env.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving", "--host", "127.0.0.1", *self.args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        # Drained continuously: a full pipe would block the server on its next log line.
        self._reader = threading.Thread(target=self._drain, name="serving-output", daemon=True)
        self._reader.start()
        return self

    def wait_healthy(self, timeout_s: float = 120) -> None:
        """Poll the health route until 200; RuntimeError if the server dies, fails or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(self._failure(f"the server exited (code {code})"))
            status, body = self._request("GET", self.health_route, timeout_s=10)
            if status == 200:
                return
            loading = status == 503 and isinstance(body, dict) and body.get("status") == "loading"
            if status is not None and not loading:  # None: not listening yet
                raise RuntimeError(self._failure(f"health answered {status}: {body}"))
            time.sleep(0.2)
        raise RuntimeError(self._failure(f"the server was not healthy after {timeout_s:g} s"))

    def predict(self, instances: list, parameters: dict | None = None) -> dict:
        """The predict route's JSON answer; ServerError for an error status."""
        body: dict = {"instances": instances}
        if parameters is not None:
            body["parameters"] = parameters
        status, answer = self._request("POST", self.predict_route, json.dumps(body).encode())
        if status is None:
            raise RuntimeError(f"nothing answered at {self.url}{self.predict_route}")
        if status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            reason = error.get("reason", "") if isinstance(error, dict) else ""
            raise ServerError(status, _message(answer), reason=reason)
        return answer

    def stop(self) -> None:
        """Terminate the server; kill it if it has not exited after STOP_GRACE_S."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.process = None

    def output_tail(self) -> str:
        """The server's last lines of output (stdout and stderr together)."""
        return "".join(self._output)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._output.append(line)

    def _failure(self, what: str) -> str:
        tail = self.output_tail() or "(no output)\n"
        return f"{what}; serving {self.model_uri}. Its last output:\n{tail}"

    def _request(
        self, method: str, route: str, data: bytes | None = None, *, timeout_s: float = 600
    ) -> tuple[int | None, object]:
        """(status, parsed JSON body); status None when nothing answers in time."""
        request = urllib.request.Request(
            self.url + route, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=timeout_s) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _json(e.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None, None


def _message(answer: object) -> str:
    """The one-line message of a JSON error answer (`serving.errors`), else the answer."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    return str(answer)


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _free_port() -> int:
    # The port is free now; another process could take it before the child binds, which
    # would show up as the child exiting, reported with its output by wait_healthy.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _code_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(serving.__file__)))


def brief(instance: object) -> str:
    """An instance for a log line: inline image bytes shown by size, not as base64. (Here, not
    in serving.vision: printing a summary must not import torch.)"""
    if isinstance(instance, dict) and isinstance(instance.get("image"), dict):
        b64 = instance["image"].get("b64", "")
        instance = {**instance, "image": f"<image, {len(b64) * 3 // 4} bytes>"}
    return repr(instance)
