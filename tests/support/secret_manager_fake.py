"""A loopback Secret Manager that speaks the REST API's `versions/*:access`.

    def test_x(secret_manager):
        secret_manager.add("projects/p/secrets/k/versions/1", "value")
        assert read_secret("projects/p/secrets/k/versions/1") == "value"
        assert secret_manager.requests[0].path == "/v1/projects/p/secrets/k/versions/1:access"

The fixture points `LIFTOFF_SECRET_MANAGER_ENDPOINT` at the server, so the real client library
(REST transport, anonymous credentials) is exercised on the wire. Unknown secrets get the
404 JSON Google returns; every request is recorded with its method, path and headers.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import pytest

from tests.support.loopback import JSONHandler, LoopbackFake, LoopbackServer
from trainers.common.secrets import ENDPOINT_ENV

_ACCESS = re.compile(r"/v1/(projects/[^/]+/secrets/[^/]+/versions/[^/:]+):access")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str  # e.g. "%24alt=json%3Benum-encoding%3Dint", the REST transport's own
    headers: dict[str, str]  # lower-cased names


class SecretManagerFake(LoopbackFake):
    """Serves the secrets given to `add` on 127.0.0.1 until `close`."""

    def __init__(self) -> None:
        self.secrets: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self._http = LoopbackServer(_handler_for(self))

    def add(self, resource: str, value: str | bytes) -> None:
        self.secrets[resource] = value.encode("utf-8") if isinstance(value, str) else value

    def respond(self, method: str, path: str) -> tuple[int, dict]:
        """The status and JSON body for one request."""
        match = _ACCESS.fullmatch(path)
        if method != "GET" or not match:
            return 404, _error(404, "NOT_FOUND", f"no such method: {method} {path}")
        resource = match.group(1)
        if resource not in self.secrets:
            return 404, _error(
                404, "NOT_FOUND", f"Secret [{resource}] not found or has no versions."
            )
        import google_crc32c  # here, not at the top: this plugin loads for every test run

        data = self.secrets[resource]
        # int64 fields are strings in proto3 JSON; the client parses them back to int.
        payload = {
            "data": base64.b64encode(data).decode(),
            "dataCrc32c": str(google_crc32c.value(data)),
        }
        return 200, {"name": resource, "payload": payload}


def _error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def _handler_for(fake: SecretManagerFake) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            headers = {name.lower(): value for name, value in self.headers.items()}
            path, _, query = self.path.partition("?")
            fake.requests.append(Request(self.command, path, query, headers))
            status, body = fake.respond(self.command, path)
            self.send_json(status, body)

    return Handler


@pytest.fixture
def secret_manager(monkeypatch: pytest.MonkeyPatch):
    """A fresh fake per test, with `LIFTOFF_SECRET_MANAGER_ENDPOINT` pointing at it."""
    fake = SecretManagerFake()
    monkeypatch.setenv(ENDPOINT_ENV, fake.url)
    yield fake
    fake.close()
