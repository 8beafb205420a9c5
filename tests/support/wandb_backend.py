"""A loopback W&B backend: the GraphQL operations, file stream and file uploads that wandb 0.31's
own client sends for online runs, job creation, `launch_add` and the launch agent.

    def test_x(wandb_backend):              # WANDB_BASE_URL and WANDB_API_KEY point here
        wandb.Api().create_run_queue("vertex-a100", type="gcp-vertex", config={...})
        ...  wandb's own client runs: wandb.init, launch_add, LaunchAgent ...
        assert wandb_backend.launch.items["rqi-1"].state == "CLAIMED"
        assert wandb_backend.operations() == [...]   # names of the GraphQL operations seen
        assert wandb_backend.runs["team/proj/abc123"].config["optim"]["lr"] == 0.001

Every request is recorded (`requests`). The operations answered were first recorded from wandb's
own client against a server that answered nothing; an operation this backend does not know is
answered with a GraphQL error and kept in `unknown`, so a new wandb that sends something new
fails loudly instead of silently. State lives in memory: runs (config, summary, state, files),
artifacts (the launch job; tests.support.wandb_artifacts), run queues with their items and
launch agents (tests.support.wandb_launch_state).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support.loopback import JSONHandler, LoopbackFake, LoopbackServer
from tests.support.wandb_artifacts import ArtifactStore
from tests.support.wandb_launch_state import LaunchState

API_KEY = "local-" + "0123456789abcdef" * 3  # the shape wandb accepts for a local server
_OPERATION = re.compile(r"\b(query|mutation)\s+(\w+)")
_FILE_STREAM = re.compile(r"/files/(?P<entity>[^/]+)/(?P<project>[^/]+)/(?P<run>[^/]+)/file_stream")
_STORAGE = re.compile(r"/storage/(?P<key>.+)")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    operation: str  # the GraphQL operation name; "" for other requests
    variables: dict
    body: object  # parsed JSON, raw bytes for uploads, None when empty


@dataclass
class Run:
    entity: str
    project: str
    name: str
    config: dict = field(default_factory=dict)  # plain values, without W&B's "_wandb"
    summary: dict = field(default_factory=dict)
    job_type: str = ""
    state: str = "running"  # running | finished | failed | crashed
    exit_code: int | None = None
    stopped: bool = False  # set by a test: what "stop run" in the UI does
    inputs: list[str] = field(default_factory=list)  # artifacts used, ENTITY/PROJECT/NAME:vN

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}"


class WandbBackend(LoopbackFake):
    """Serves on 127.0.0.1 until `close`; `entity` is the viewer's own entity."""

    def __init__(self, *, entity: str = "liftoff-team") -> None:
        self.entity = entity
        self.requests: list[Request] = []
        self.unknown: list[str] = []
        self.runs: dict[str, Run] = {}
        self.uploads: dict[str, bytes] = {}
        self._projects: dict[str, int] = {}
        self.launch = LaunchState(self)
        self.artifacts = ArtifactStore(self)
        self.lock = threading.RLock()
        self._http = LoopbackServer(_handler_for(self))

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests if r.operation]

    def run(self, entity: str, project: str, name: str) -> Run:
        key = f"{entity}/{project}/{name}"
        if key not in self.runs:
            self.runs[key] = Run(entity=entity, project=project, name=name)
        return self.runs[key]

    # -- dispatch ---------------------------------------------------------------------------

    def graphql(self, body: dict) -> dict:
        match = _OPERATION.search(body.get("query", ""))
        name = match.group(2) if match else body.get("operationName") or ""
        variables = body.get("variables") or {}
        with self.lock:
            self.requests.append(Request("POST", "/graphql", name, variables, body))
            handler = next(
                (
                    getattr(part, f"op_{name}")
                    for part in (self, self.launch, self.artifacts)
                    if hasattr(part, f"op_{name}")
                ),
                None,
            )
            if handler is None:
                self.unknown.append(name)
                return {"errors": [{"message": f"loopback W&B: no operation {name!r}"}]}
            try:
                return {"data": handler(variables)}
            except Exception as err:  # a bug here: answer it, so the client fails at once
                self.unknown.append(f"{name}: {type(err).__name__}: {err}")
                return {"errors": [{"message": f"loopback W&B: {name} failed: {err!r}"}]}

    def other(self, method: str, path: str, body: object) -> tuple[int, object]:
        with self.lock:
            self.requests.append(Request(method, path, "", {}, body))
            if match := _FILE_STREAM.fullmatch(path):
                return 200, self._file_stream(body or {}, **match.groupdict())
            if match := _STORAGE.fullmatch(path):
                if method == "PUT":
                    self.uploads[match["key"]] = body if isinstance(body, bytes) else b""
                    return 200, {}
                if match["key"] in self.uploads:
                    return 200, self.uploads[match["key"]]
                return 404, {"error": f"no upload {match['key']}"}
            if path.startswith("/sdk/otel/"):
                return 200, {}  # wandb-core's own telemetry
            return 404, {"error": f"no route {method} {path}"}

    # -- runs -------------------------------------------------------------------------------

    def project_number(self, entity: str, project: str) -> int:
        """W&B's numeric project id, which the public API parses as an int."""
        return self._projects.setdefault(f"{entity}/{project}", len(self._projects) + 1)

    def op_DeleteRun(self, variables: dict) -> dict:  # noqa: N802
        self.runs.pop(variables["id"].removeprefix("run:"), None)
        return {"deleteRun": {"clientMutationId": None}}

    def op_Viewer(self, variables: dict) -> dict:  # noqa: N802 (W&B's operation names)
        return {
            "viewer": {
                "id": "VXNlcjox",
                "entity": self.entity,
                "username": self.entity,
                "email": f"{self.entity}@example.com",
                "flags": "{}",
                "teams": {"edges": []},
                "admin": False,
            }
        }

    def op_GetDefaultEntity(self, variables: dict) -> dict:  # noqa: N802
        return {"viewer": {"id": "VXNlcjox", "entity": self.entity}}

    def op_UpsertBucket(self, variables: dict) -> dict:  # noqa: N802
        entity = variables.get("entity") or self.entity
        project = variables.get("project") or "uncategorized"
        name = variables.get("name") or secrets.token_hex(4)
        inserted = f"{entity}/{project}/{name}" not in self.runs
        run = self.run(entity, project, name)
        if variables.get("config"):
            values = json.loads(variables["config"])
            run.config.update({k: v["value"] for k, v in values.items() if k != "_wandb"})
        if variables.get("summaryMetrics"):
            run.summary.update(json.loads(variables["summaryMetrics"]))
        run.job_type = variables.get("jobType") or run.job_type
        return {"upsertBucket": {"bucket": self._bucket(run), "inserted": inserted}}

    def _bucket(self, run: Run) -> dict:
        return {
            "id": f"run:{run.path}",
            "name": run.name,
            "displayName": run.name,
            "description": None,
            "config": json.dumps({k: {"value": v} for k, v in run.config.items()}),
            "sweepName": None,
            "project": {
                "id": f"project:{run.entity}/{run.project}",
                "name": run.project,
                "entity": {"id": f"entity:{run.entity}", "name": run.entity},
            },
            "historyLineCount": 0,
        }

    def op_ServerFeaturesQuery(self, variables: dict) -> dict:  # noqa: N802
        return {"serverInfo": {"features": []}}

    def op_Run(self, variables: dict) -> dict:  # noqa: N802
        run = self.runs.get(f"{variables['entity']}/{variables['project']}/{variables['name']}")
        return {"project": {"run": self._run_fragment(run) if run else None}}

    def _run_fragment(self, run: Run) -> dict:
        return {
            "projectId": self.project_number(run.entity, run.project),
            "id": f"run:{run.path}",
            "tags": [],
            "name": run.name,
            "displayName": run.name,
            "sweepName": None,
            "state": run.state,
            "config": json.dumps({k: {"value": v} for k, v in run.config.items()}),
            "group": None,
            "jobType": run.job_type,
            "commit": None,
            "readOnly": False,
            "createdAt": "2026-01-01T00:00:00",
            "heartbeatAt": "2026-01-01T00:00:00",
            "description": None,
            "notes": None,
            "systemMetrics": "{}",
            "summaryMetrics": json.dumps(run.summary),
            "historyLineCount": 0,
            "user": {"name": self.entity, "username": self.entity},
            "historyKeys": None,
        }

    def op_OrganizationCoreWeaveOrganizationID(self, variables: dict) -> dict:  # noqa: N802
        return {"entity": {"organization": None}}

    def op_CreateRunFiles(self, variables: dict) -> dict:  # noqa: N802
        run = f"{variables['entity']}/{variables['project']}/{variables['run']}"
        files = [
            {"name": name, "uploadUrl": f"{self.url}/storage/runs/{run}/{name}"}
            for name in variables["files"]
        ]
        return {"createRunFiles": {"runID": f"run:{run}", "uploadHeaders": [], "files": files}}

    def _file_stream(self, body: dict, *, entity: str, project: str, run: str) -> dict:
        record = self.run(entity, project, run)
        for line in body.get("files", {}).get("wandb-summary.json", {}).get("content", []):
            record.summary.update(json.loads(line))
        if body.get("complete"):
            record.exit_code = body.get("exitcode")
            record.state = "finished" if record.exit_code == 0 else "failed"
        return {"exitcode": None, "limits": {}}


def _handler_for(backend: WandbBackend) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self._body()
            if self.path.split("?")[0] == "/graphql":
                self.send_json(200, backend.graphql(json.loads(raw)))
                return
            self._send(*backend.other("POST", self.path.split("?")[0], _parse(raw)))

        def do_GET(self) -> None:  # noqa: N802
            self._send(*backend.other("GET", self.path.split("?")[0], None))

        def do_PUT(self) -> None:  # noqa: N802
            self._send(*backend.other("PUT", self.path.split("?")[0], self._body()))

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: object) -> None:
            if not isinstance(body, bytes):
                self.send_json(status, body)
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


@pytest.fixture
def wandb_backend(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[WandbBackend]:
    """A fresh backend per test; wandb online against it, its files under tmp_path."""
    backend = WandbBackend()
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for name, value in {
        "WANDB_BASE_URL": backend.url,
        "WANDB_API_KEY": API_KEY,
        "WANDB_ENTITY": backend.entity,
        "WANDB_DIR": str(tmp_path / "wandb"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_SILENT": "true",
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "wandb").mkdir()
    try:
        yield backend
    finally:
        backend.close()
