"""What the loopback fakes of Google APIs share: an HTTP server on 127.0.0.1 in a background
thread, JSON answers, and the guard that lets sockets connect only to loopback.

    server = LoopbackServer(HandlerClass)   # serving at once
    server.url                               # http://127.0.0.1:PORT
    server.close()
    class VertexFake(LoopbackFake): ...      # a fake's own .url and .close(), from its ._http
    socket.socket.connect = loopback_only(socket.socket.connect)
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # A short poll keeps shutdown() (once per test) from costing serve_forever's 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class LoopbackFake:
    """A fake served by the LoopbackServer it keeps as `_http`: its URL, and close()."""

    _http: LoopbackServer

    @property
    def url(self) -> str:
        return self._http.url

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class Incoming:
    """One HTTP request as a fake reads it."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes


class JSONHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and keeps test output clean."""

    def incoming(self) -> Incoming:
        """The request being handled, its body read."""
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        return Incoming(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )

    def send_json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:
        pass


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def loopback_only(connect):
    """Wrap `socket.connect`/`connect_ex` so an IP connection off this machine fails loudly."""

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        return connect(sock, address)

    return guarded
