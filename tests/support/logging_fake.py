"""A loopback Cloud Logging API (v2 REST): `entries.list`, as `google.cloud.logging.Client(
_use_grpc=False, client_options={"api_endpoint": url}, credentials=AnonymousCredentials())` calls
it, with every request recorded.

    def test_x(logging_fake):                     # LIFTOFF_LOGGING_ENDPOINT points at it
        logging_fake.add(job_id="1234", message="step 10/500 loss 2.31", severity="INFO")
        ...
        (request,) = logging_fake.requests
        assert request.body["filter"].startswith('timestamp>="')

It answers POST /v2/entries:list as Logging does: the entries of the named `resourceNames`
that match `filter` (Logging's query language, evaluated by tests.support.filters: resource
type and labels, severity by rank, timestamps as times, logName, labels, textPayload and
jsonPayload fields), ordered by `orderBy` ("timestamp asc", the default, or "timestamp desc"),
`pageSize` at a time with a `nextPageToken`. An unknown field in a filter is 400, as a typo
there would match nothing on Google without saying so. `add` stamps entries one microsecond
apart, in the order added, unless given a timestamp.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.filters import parse_filter, parse_time
from tests.support.loopback import JSONHandler, LoopbackFake, LoopbackServer

ENDPOINT_ENV = "LIFTOFF_LOGGING_ENDPOINT"
PIPELINE_RESOURCE = "aiplatform.googleapis.com/PipelineJob"
_FIELDS = ("logName", "severity", "textPayload", "insertId")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict


class LoggingFake(LoopbackFake):
    def __init__(self, project: str = "proj-1") -> None:
        self.project = project
        self.entries: list[dict] = []
        self.requests: list[Request] = []
        self._clock = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler_for(self))

    def add(
        self,
        message: str | dict,
        *,
        job_id: str = "",
        pipeline_job_id: str = "",
        severity: str = "INFO",
        timestamp: datetime | None = None,
    ) -> dict:
        """An entry of a CustomJob (`job_id`) or of a pipeline run (`pipeline_job_id`); a dict
        message is a jsonPayload (what a structured log line becomes)."""
        if timestamp is None:
            self._clock += timedelta(microseconds=1)
            timestamp = self._clock
        if job_id:
            labels = {"job_id": job_id, "task_name": "workerpool0-0"}
            resource, log = {"type": "ml_job", "labels": labels}, "workerpool0-0"
        else:
            labels = {"pipeline_job_id": pipeline_job_id}
            resource, log = {"type": PIPELINE_RESOURCE, "labels": labels}, "pipelines"
        entry = {
            "logName": f"projects/{self.project}/logs/{log}",
            "resource": resource,
            "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
            "severity": severity,
            "insertId": uuid.uuid4().hex[:16],
            **({"jsonPayload": message} if isinstance(message, dict) else {"textPayload": message}),
        }
        with self._lock:
            self.entries.append(entry)
        return entry

    def list(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Request("POST", "/v2/entries:list", body))
            try:
                match = parse_filter(body.get("filter", ""))
                found = [e for e in self._in(body) if match(lambda path, e=e: _field(e, path))]
            except (ValueError, KeyError) as err:
                return 400, _error(400, "INVALID_ARGUMENT", f"bad filter: {err}")
        descending = body.get("orderBy", "timestamp asc").lower() == "timestamp desc"
        found.sort(key=lambda e: parse_time(e["timestamp"]), reverse=descending)
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 1000)
        page = {"entries": found[start : start + size]} if found[start:] else {}
        if start + size < len(found):
            page["nextPageToken"] = str(start + size)
        return 200, page

    def _in(self, body: dict) -> list[dict]:
        names = body.get("resourceNames", [])
        return [e for e in self.entries if e["logName"].split("/logs/")[0] in names]


def _field(entry: dict, path: str):
    """The value at `path`; KeyError for a path Logging entries do not have."""
    if path == "timestamp":
        return parse_time(entry["timestamp"])
    if path == "resource.type":
        return entry["resource"]["type"]
    for prefix, values in (
        ("resource.labels.", entry["resource"]["labels"]),
        ("labels.", entry.get("labels", {})),
        ("jsonPayload.", entry.get("jsonPayload", {})),
    ):
        if path.startswith(prefix):
            return values.get(path.removeprefix(prefix))
    if path in _FIELDS:
        return entry.get(path)
    raise KeyError(f"unknown field {path!r}")


def _error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def _handler_for(fake: LoggingFake) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            incoming = self.incoming()
            if incoming.path != "/v2/entries:list":
                self.send_json(404, _error(404, "NOT_FOUND", f"no route: POST {incoming.path}"))
                return
            self.send_json(*fake.list(json.loads(incoming.body or b"{}")))

    return Handler


@pytest.fixture
def logging_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoggingFake]:
    """A fresh fake per test, with `LIFTOFF_LOGGING_ENDPOINT` pointing at it."""
    fake = LoggingFake()
    monkeypatch.setenv(ENDPOINT_ENV, fake.url)
    try:
        yield fake
    finally:
        fake.close()
