"""The Vertex AI API as liftoff's schedule and run commands call it: where (project, region,
endpoint), the GAPIC clients, resources as REST JSON, runs named three ways, and Google's errors
as one line.

    where = resolve_location({"project": None, "region": None, "api_endpoint": None})
    pipelines = client("PipelineServiceClient", where)
    where, name = run_name("llm-finetune-20260105-030000-ab12", where)   # or a URL, a name
    job = as_json(call(pipelines.get_pipeline_job, what=f"run {name}", name=name))

Each option comes from its flag, `LIFTOFF_*`, or liftoff.toml's [vertex] table
(pipelines/settings.py). A loopback `http://` endpoint (an emulator, in tests) gets the REST
transport, the only one that speaks plain HTTP, and anonymous credentials, so nothing can reach
Google; otherwise the region's endpoint with Application Default Credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipelines.settings import _alternatives, check_endpoint, check_region, lookup

NAMES = ("project", "region", "api_endpoint")
# The console URL `liftoff submit` prints (pipelines/submit.py CONSOLE_URL), read back.
_CONSOLE = re.compile(
    r"https://console\.cloud\.google\.com/vertex-ai/locations/(?P<region>[^/]+)"
    r"/pipelines/runs/(?P<id>[^/?#]+)(?:\?(?:[^#]*&)?project=(?P<project>[^&#]+))?.*"
)
_RESOURCE = re.compile(
    r"projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/(?P<kind>\w+)/(?P<id>[^/]+)"
)
_JOB_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")


@dataclass(frozen=True, kw_only=True)
class Location:
    project: str
    region: str
    api_endpoint: str = ""

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def is_loopback(self) -> bool:
        return self.api_endpoint.startswith("http://")


def resolve_location(
    flags: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: str | os.PathLike = ".",
) -> Location:
    """`flags`: `project`, `region`, `api_endpoint` as parsed (None: not given)."""
    values, sources = lookup(list(NAMES), flags, environ=environ, cwd=cwd)
    for name in ("project", "region"):
        if name not in values:
            raise ValueError(f"--{name} is required (or {_alternatives(name)})")
    check_region(values["region"], source=sources["region"])
    if "api_endpoint" in values:
        check_endpoint(values["api_endpoint"], source=sources["api_endpoint"])
    return Location(**values)


def run_name(text: str, where: Mapping[str, str | None] | Location) -> tuple[Location, str]:
    """A run given as a job id, a resource name or a console URL -> (where it is, its resource
    name). `where`: the Location, or the flags to resolve it from (a name or URL brings its own
    project and region)."""
    flags = dict(vars(where)) if isinstance(where, Location) else dict(where)
    for pattern in (_CONSOLE, _RESOURCE):
        found = pattern.fullmatch(text.strip())
        if found and found.groupdict().get("kind", "pipelineJobs") == "pipelineJobs":
            flags.update(region=found["region"], project=found["project"] or flags["project"])
            location = resolve_location(flags)
            return location, f"{location.parent}/pipelineJobs/{found['id']}"
    if not _JOB_ID.fullmatch(text):
        raise ValueError(
            f"run {text!r}: expected a job id, projects/P/locations/R/pipelineJobs/ID or the "
            "console URL liftoff submit printed"
        )
    location = where if isinstance(where, Location) else resolve_location(flags)
    return location, f"{location.parent}/pipelineJobs/{text}"


def resource_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def client(service: str, where: Location):
    """A GAPIC client of aiplatform_v1 (`PipelineServiceClient`, `ScheduleServiceClient`,
    `JobServiceClient`, `ModelServiceClient`) for `where`."""
    from google.cloud import aiplatform_v1

    cls = getattr(aiplatform_v1, service)
    if where.is_loopback:
        from google.auth.credentials import AnonymousCredentials

        return cls(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": where.api_endpoint},
        )
    endpoint = where.api_endpoint or f"{where.region}-aiplatform.googleapis.com"
    return cls(client_options={"api_endpoint": endpoint})


def call(method: Callable, *, what: str, **request):
    """`method(**request)`; a missing resource is the user's error (ValueError naming `what`),
    any other refusal of Google's API or auth a one-line RuntimeError."""
    from google.api_core.exceptions import GoogleAPIError, NotFound
    from google.auth.exceptions import GoogleAuthError

    try:
        return method(**request)
    except NotFound:
        raise ValueError(f"{what}: not found") from None
    except (GoogleAPIError, GoogleAuthError) as err:
        raise RuntimeError(f"{what}: Vertex AI: {' '.join(str(err).split())}") from None


def as_json(message) -> dict:
    """A GAPIC message as the REST API's camelCase JSON (enums by name, int64 as strings)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(type(message).pb(message))
