"""A loopback Vertex AI API (v1 REST) for pipeline submission: PipelineJobs and Experiments.

    def test_x(vertex_fake, gcs_emulator):       # submit() also checks the pipeline-root bucket
        vertex_fake.final_state = "PIPELINE_STATE_FAILED"
        submit(..., settings=SubmitSettings(..., api_endpoint=vertex_fake.url))
        create = vertex_fake.requests[0]
        assert create.path == "/v1/projects/p/locations/us-central1/pipelineJobs"
        assert create.body["runtimeConfig"]["gcsOutputDirectory"] == "gs://..."

The real SDK talks to it with `aiplatform.init(api_endpoint=fake.url, api_transport="rest",
credentials=AnonymousCredentials())`. A created job reads back PENDING from the create call,
RUNNING from its first `running_polls` GETs (1 by default) and `final_state` (SUCCEEDED by
default) after that, with the PipelineRun context that `submit(experiment=...)` waits for.
Experiment contexts answer 404 until created, as the SDK's get-or-create expects. Every
request, unknown ones included (those get Google's 404 JSON), is recorded.

The fixture also points `LIFTOFF_API_ENDPOINT` at the server, makes the SDK's project-number
lookup and job polling local and fast, and at teardown resets the SDK's global
`aiplatform.init` state, so no later test inherits a dead endpoint or anonymous credentials.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.loopback import JSONHandler, LoopbackServer

ENDPOINT_ENV = "LIFTOFF_API_ENDPOINT"
PROJECT_NUMBER = "123456789012"  # what the Resource Manager lookup answers under the fixture

_LOCATION = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
_STORE = _LOCATION + r"/metadataStores/(?P<store>[^/:]+)"
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("POST", re.compile(_LOCATION + r"/pipelineJobs"), "create_job"),
    ("GET", re.compile(_LOCATION + r"/pipelineJobs/(?P<id>[^/:]+)"), "get_job"),
    ("GET", re.compile(_STORE), "get_store"),
    ("POST", re.compile(_STORE + r"/contexts"), "create_context"),
    ("GET", re.compile(_STORE + r"/contexts/(?P<id>[^/:]+)"), "get_context"),
    ("POST", re.compile(_STORE + r"/contexts/(?P<id>[^/:]+):addContextChildren"), "add_children"),
]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]  # e.g. {"pipelineJobId": "...", "$alt": "json;enum-encoding=int"}
    body: dict | None  # the parsed JSON body, None when there was none
    headers: dict[str, str]  # lower-cased names


class _Error(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.body = code, {"error": {"code": code, "message": message, "status": status}}


class VertexFake:
    """Serves PipelineJobs and metadata contexts from memory on 127.0.0.1 until `close`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.final_state = "PIPELINE_STATE_SUCCEEDED"
        # GETs of a job that answer RUNNING before `final_state`; `submit(experiment=...)`
        # needs at least one, as it reads the run's context from a job that is still running.
        self.running_polls = 1
        self.error_message = "The DAG failed because some tasks failed."  # for FAILED jobs
        self.jobs: dict[str, dict] = {}  # by resource name
        self.contexts: dict[str, dict] = {}  # by resource name
        self._polls: dict[str, int] = {}  # GETs so far, by job name
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler_for(self))

    @property
    def url(self) -> str:
        return self._http.url

    def close(self) -> None:
        self._http.close()

    def handle(self, request: Request) -> tuple[int, dict]:
        """Record `request`; return the status and JSON body to answer it with."""
        with self._lock:  # handlers run on one thread per connection
            self.requests.append(request)
            for method, pattern, action in _ROUTES:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    try:
                        return 200, getattr(self, action)(request, **match.groupdict())
                    except _Error as e:
                        return e.code, e.body
            return 404, _Error(404, "NOT_FOUND", f"no route: {request.method} {request.path}").body

    def create_job(self, request: Request, *, parent: str) -> dict:
        name = f"{parent}/pipelineJobs/{request.query['pipelineJobId']}"
        if name in self.jobs:
            raise _Error(409, "ALREADY_EXISTS", f"PipelineJob {name} already exists.")
        now = _now()
        job = {**(request.body or {}), "name": name, "state": "PIPELINE_STATE_PENDING"}
        self.jobs[name] = job | {"createTime": now, "updateTime": now}
        return self.jobs[name]

    def get_job(self, request: Request, *, parent: str, id: str) -> dict:
        name = f"{parent}/pipelineJobs/{id}"
        job = self._find(self.jobs, name, "PipelineJob")
        self._polls[name] = polls = self._polls.get(name, 0) + 1
        state = "PIPELINE_STATE_RUNNING" if polls <= self.running_polls else self.final_state
        job.update(state=state, updateTime=_now())
        # Vertex creates these metadata contexts once the run starts; experiments wait for them.
        store = f"{parent}/metadataStores/default/contexts"
        job["jobDetail"] = {
            "pipelineContext": {"name": f"{store}/{job['pipelineSpec']['pipelineInfo']['name']}"},
            "pipelineRunContext": {"name": f"{store}/{id}", "schemaTitle": "system.PipelineRun"},
        }
        if state == "PIPELINE_STATE_FAILED":
            job["error"] = {"code": 9, "message": self.error_message}
        return job

    def get_store(self, request: Request, *, parent: str, store: str) -> dict:
        # Every project that has used Vertex has its default store, so it always exists here.
        return {"name": f"{parent}/metadataStores/{store}", "createTime": _now()}

    def create_context(self, request: Request, *, parent: str, store: str) -> dict:
        name = _context(parent, store, request.query["contextId"])
        if name in self.contexts:
            raise _Error(409, "ALREADY_EXISTS", f"Context {name} already exists.")
        now = _now()
        self.contexts[name] = {**(request.body or {}), "name": name, "createTime": now}
        return self.contexts[name]

    def get_context(self, request: Request, *, parent: str, store: str, id: str) -> dict:
        return self._find(self.contexts, _context(parent, store, id), "Context")

    def add_children(self, request: Request, *, parent: str, store: str, id: str) -> dict:
        context = self._find(self.contexts, _context(parent, store, id), "Context")
        children = context.setdefault("childContexts", [])
        children.extend((request.body or {}).get("childContexts", []))
        return {}

    @staticmethod
    def _find(resources: dict[str, dict], name: str, kind: str) -> dict:
        if name not in resources:
            raise _Error(404, "NOT_FOUND", f"{kind} {name} is not found.")
        return resources[name]


def _context(parent: str, store: str, context_id: str) -> str:
    return f"{parent}/metadataStores/{store}/contexts/{context_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _handler_for(fake: VertexFake) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer()

        do_POST = do_PATCH = do_DELETE = do_GET

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                body=json.loads(raw) if raw else None,
                headers={name.lower(): value for name, value in self.headers.items()},
            )
            status, body = fake.handle(request)
            self.send_json(status, body)

    return Handler


def _project_number(project_id: str, credentials=None) -> str:
    return PROJECT_NUMBER


def _reset_aiplatform() -> None:
    """Forget `aiplatform.init` (endpoint, credentials, project), if the SDK was ever loaded."""
    initializer = sys.modules.get("google.cloud.aiplatform.initializer")
    if initializer is not None:
        # In place: `aiplatform.init` is a method bound to this very object.
        initializer.global_config.__init__()


@pytest.fixture
def vertex_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[VertexFake]:
    """A fresh fake per test, with `LIFTOFF_API_ENDPOINT` pointing at it."""
    from google.cloud.aiplatform import pipeline_jobs
    from google.cloud.aiplatform.utils import resource_manager_utils

    # When submit() creates a missing pipeline-root bucket for a job without a service account,
    # the SDK looks up the project number over gRPC (cloudresourcemanager.googleapis.com),
    # which no socket guard or endpoint setting can stop; offline it retries for ~50 s.
    monkeypatch.setattr(resource_manager_utils, "get_project_number", _project_number)
    # PipelineJob.wait() sleeps 5 s between polls, doubling; the fake's jobs move at once.
    monkeypatch.setattr(pipeline_jobs, "_JOB_WAIT_TIME", 0.01)
    fake = VertexFake()
    monkeypatch.setenv(ENDPOINT_ENV, fake.url)
    try:
        yield fake
    finally:
        fake.close()
        _reset_aiplatform()
