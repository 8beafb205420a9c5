"""A fault-injecting HTTP proxy in front of the GCS emulator, on loopback: the storage faults a
trainer must survive (429 and 5xx answers, dropped connections, requests that reach storage but
whose answer is lost, bodies cut short) and the outage it must report in one line.

    proxy = FaultProxy(upstream=gcs_emulator)      # tests/support/gcs_emulator.py's URL
    with proxy.serving():                          # STORAGE_EMULATOR_HOST points at the proxy
        proxy.fail(every=4, kinds=("503", "lost-reply"))   # every 4th request fails, once
        proxy.fail(every=2, methods=("POST", "PUT"))   # every other write: 503
        ...                                        # the code under test, against gs://
        proxy.down(after=2)                        # every request after the next 2: 503
    proxy.faults                                   # [(method, path, kind), ...] as injected

Requests are forwarded one by one with their method, path, headers and body; the answer comes
back as storage gave it. A fault is injected instead of (or, for "lost-reply" and "short-body",
after) forwarding, so a test can tell "never reached storage" from "done, but the client was
told otherwise".
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import fsspec

from tests.support.loopback import JSONHandler

# Answered without forwarding: the request never reaches storage.
STATUS_FAULTS = ("429", "500", "502", "503", "504")
# "drop": the connection closes unanswered, nothing forwarded. "lost-reply": storage does it,
# the client gets a 503. "short-body": storage's answer, cut off halfway through its body.
KINDS = (*STATUS_FAULTS, "drop", "lost-reply", "short-body")
# Headers of the hop, not of the request or answer (RFC 9110 §7.6.1).
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class FaultProxy:
    def __init__(self, *, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, str]] = []  # every request seen: (method, path)
        self.num_requests, self._counted, self._methods = 0, 0, ()
        self._lock = threading.Lock()
        self._every, self._kinds, self._down_at = 0, (), None
        self._server = _Server(("127.0.0.1", 0), _handler(self))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, *, every: int, kinds: tuple[str, ...] = ("503",), methods=()) -> None:
        """From the next request on, every `every`-th one (of `methods`, when given) gets the
        next fault of `kinds`."""
        assert every >= 1 and kinds and set(kinds) <= set(KINDS), (every, kinds)
        with self._lock:
            self._every, self._kinds, self._methods = every, tuple(kinds), tuple(methods)
            self._counted = 0

    def down(self, *, after: int = 0) -> None:
        """Storage goes out after `after` more requests: every later one is answered 503,
        until `heal`."""
        with self._lock:
            self._down_at = self.num_requests + after

    def heal(self) -> None:
        with self._lock:
            self._every, self._kinds, self._down_at = 0, (), None

    def decide(self, method: str, path: str) -> str | None:
        """The fault for this request, or None to forward it untouched."""
        with self._lock:
            self.num_requests += 1
            self.requests.append((method, path))
            kind = None
            if self._down_at is not None and self.num_requests > self._down_at:
                kind = "503"
            elif self._every and (not self._methods or method in self._methods):
                self._counted += 1
                if self._counted % self._every == 0:
                    nth = self._counted // self._every - 1
                    kind = self._kinds[nth % len(self._kinds)]
            if kind:
                self.faults.append((method, path, kind))
            return kind

    @contextlib.contextmanager
    def serving(self) -> Iterator[FaultProxy]:
        """Serve, with every GCS client of this process (and its children) pointed here."""
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.url
        fsspec.get_filesystem_class("gs").clear_instance_cache()  # instances keep endpoints
        try:
            yield self
        finally:
            if saved is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = saved
            fsspec.get_filesystem_class("gs").clear_instance_cache()
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)

    def forward(self, method: str, target: str, headers: dict, body: bytes):
        """(status, reason, headers, body) of the request as storage answers it."""
        host, port = self.upstream.hostname, self.upstream.port
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.reason, answer.getheaders(), answer.read()
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # GCS clients race requests and hang up on the loser (and a fault may hang up on
        # them): a broken connection is expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(proxy: FaultProxy) -> type[JSONHandler]:
    class Handler(JSONHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self._body()
            kind = proxy.decide(self.command, urlsplit(self.path).path)
            if kind == "drop":
                self.close_connection = True
                return
            if kind in STATUS_FAULTS:
                self._error(int(kind))
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            status, reason, answer_headers, data = proxy.forward(
                self.command, self.path, headers, body
            )
            if kind == "lost-reply":
                self._error(503)
                return
            self.send_response(status, reason)
            for name, value in answer_headers:
                if name.lower() not in _HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if kind == "short-body" and data:
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _error(self, status: int) -> None:
            self.send_json(status, {"error": {"code": status, "message": f"fault {status}"}})

    return Handler
