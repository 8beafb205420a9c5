"""A loopback Vertex AI API (v1 REST): PipelineJobs (create, get, list, cancel), Experiments,
CustomJobs (tests.support.vertex_custom_jobs), Schedules (tests.support.vertex_schedules) and
Model Registry lookups by display name.

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

A test puts a job there as Vertex would hold it with `add_job(parent, job_id, body,
states=[...])` (its n-th GET answers the n-th state); `list` filters (`pipeline_name`,
`schedule_name`, `labels.KEY`, ...) are evaluated by tests.support.filters, and a field Vertex
does not filter on is 400. `cancel` ends a running job CANCELLED at its next GET.

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
from operator import attrgetter
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.filters import select
from tests.support.loopback import JSONHandler, LoopbackFake, LoopbackServer
from tests.support.vertex_custom_jobs import ROUTES as CUSTOM_JOB_ROUTES
from tests.support.vertex_custom_jobs import CustomJobs
from tests.support.vertex_schedules import ROUTES as SCHEDULE_ROUTES
from tests.support.vertex_schedules import Schedules

ENDPOINT_ENV = "LIFTOFF_API_ENDPOINT"
PROJECT_NUMBER = "123456789012"  # what the Resource Manager lookup answers under the fixture

_LOCATION = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
_STORE = _LOCATION + r"/metadataStores/(?P<store>[^/:]+)"
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("POST", re.compile(_LOCATION + r"/pipelineJobs"), "create_job"),
    ("GET", re.compile(_LOCATION + r"/pipelineJobs"), "list_jobs"),
    ("GET", re.compile(_LOCATION + r"/pipelineJobs/(?P<id>[^/:]+)"), "get_job"),
    ("POST", re.compile(_LOCATION + r"/pipelineJobs/(?P<id>[^/:]+):cancel"), "cancel_job"),
    ("GET", re.compile(_LOCATION + r"/models"), "list_models"),
    ("GET", re.compile(_STORE), "get_store"),
    ("POST", re.compile(_STORE + r"/contexts"), "create_context"),
    ("GET", re.compile(_STORE + r"/contexts/(?P<id>[^/:]+)"), "get_context"),
    ("POST", re.compile(_STORE + r"/contexts/(?P<id>[^/:]+):addContextChildren"), "add_children"),
    *CUSTOM_JOB_ROUTES,
    *SCHEDULE_ROUTES,
]
# PipelineJob list filters: field -> where it is in the job (pipelines.watch sends them).
_JOB_FILTERS = {
    "pipeline_name": ("pipelineSpec", "pipelineInfo", "name"),
    "display_name": ("displayName",),
    "schedule_name": ("scheduleName",),
    "state": ("state",),
    "create_time": ("createTime",),
}
_ENDED = ("PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


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


class VertexFake(LoopbackFake):
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
        self.custom_jobs = CustomJobs()  # CustomJobs (W&B Launch): tests.support.vertex_custom_jobs
        self.schedules = Schedules(self)  # tests.support.vertex_schedules
        self.models: dict[str, dict] = {}  # Model Registry models, by resource name (add_model)
        self._scripts: dict[str, list[str]] = {}  # add_job(states=...): the states GETs answer
        self._polls: dict[str, int] = {}  # GETs so far, by job name
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler_for(self))

    def handle(self, request: Request) -> tuple[int, dict]:
        """Record `request`; return the status and JSON body to answer it with."""
        with self._lock:  # handlers run on one thread per connection
            self.requests.append(request)
            for method, pattern, action in _ROUTES:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    try:
                        return 200, attrgetter(action)(self)(request, **match.groupdict())
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
        if name in self._scripts:
            script = self._scripts[name]
            state = script[min(polls, len(script)) - 1]
        job.update(state=state, updateTime=_now())
        # Vertex creates these metadata contexts once the run starts; experiments wait for them.
        store = f"{parent}/metadataStores/default/contexts"
        pipeline = job.get("pipelineSpec", {}).get("pipelineInfo", {}).get("name", id)
        job.setdefault("jobDetail", {}).update(
            pipelineContext={"name": f"{store}/{pipeline}"},
            pipelineRunContext={"name": f"{store}/{id}", "schemaTitle": "system.PipelineRun"},
        )
        if state == "PIPELINE_STATE_FAILED":
            job["error"] = {"code": 9, "message": self.error_message}
        return job

    def add_job(
        self, parent: str, job_id: str, body: dict, *, states: list[str] | None = None
    ) -> str:
        """A PipelineJob as Vertex holds it (a test's, or a fired schedule's); with `states`,
        the n-th GET answers the n-th state and the last one stays. Returns its name."""
        name = f"{parent}/pipelineJobs/{job_id}"
        now = _now()
        state = states[0] if states else "PIPELINE_STATE_PENDING"
        self.jobs[name] = {"createTime": now, **body, "name": name, "state": state}
        self.jobs[name].setdefault("updateTime", now)
        if states:
            self._scripts[name] = list(states)
        return name

    def list_jobs(self, request: Request, *, parent: str) -> dict:
        """Newest first, as Vertex orders them by default; `filter` and `pageSize` honoured."""
        found = selected(self.jobs, request, parent=parent, fields=_JOB_FILTERS)
        found.sort(key=lambda job: job["createTime"], reverse=True)
        size = int(request.query.get("pageSize") or 0) or len(found)
        return {"pipelineJobs": found[:size]} if found else {}

    def cancel_job(self, request: Request, *, parent: str, id: str) -> dict:
        """Vertex answers at once and the job ends CANCELLED; an ended job cannot be cancelled."""
        name = f"{parent}/pipelineJobs/{id}"
        job = self._find(self.jobs, name, "PipelineJob")
        if job["state"] in _ENDED:
            message = f"PipelineJob {name} is in state {job['state']} and cannot be cancelled."
            raise _Error(400, "FAILED_PRECONDITION", message)
        self._scripts[name] = ["PIPELINE_STATE_CANCELLED"]
        self._polls[name] = 0
        job.update(state="PIPELINE_STATE_CANCELLING", endTime=_now())
        return {}

    def add_model(self, parent: str, display_name: str) -> str:
        """A Model Registry model (what a first run registered); returns its name."""
        name = f"{parent}/models/{900 + len(self.models)}"
        self.models[name] = {"name": name, "displayName": display_name, "versionId": "1"}
        return name

    def list_models(self, request: Request, *, parent: str) -> dict:
        fields = {"display_name": ("displayName",)}
        found = selected(self.models, request, parent=parent, fields=fields)
        return {"models": found} if found else {}

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


def selected(resources: dict[str, dict], request: Request, *, parent: str, fields) -> list[dict]:
    """The resources under `parent` that the request's `filter` matches (a bad one: 400, as
    Vertex answers it)."""
    try:
        return select(resources, request.query.get("filter", ""), parent=parent, fields=fields)
    except ValueError as err:
        raise _Error(400, "INVALID_ARGUMENT", str(err)) from None


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
