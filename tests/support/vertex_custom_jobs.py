"""CustomJobs for the loopback Vertex AI API (tests.support.vertex_fake): create, get, cancel,
each job moving through a scripted sequence of states.

    vertex_fake.custom_jobs.scripts = [
        Script(["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"], gate=Event()),
        Script(["JOB_STATE_QUEUED", "JOB_STATE_CANCELLED"]),
        Script(["JOB_STATE_RUNNING", "JOB_STATE_FAILED"], error="... was preempted ..."),
    ]
    body = vertex_fake.custom_jobs.bodies[0]      # the create request, as the client sent it

The n-th job created follows the n-th script (later ones the last script); each GET moves it one
state on, and the last state stays. A script with a `gate` holds its job in the state before
the last until the gate is set (the test runs the trainer meanwhile). `cancel` ends a job
CANCELLED at its next GET, as Vertex does after CANCELLING.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

_LOCATION = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("POST", re.compile(_LOCATION + r"/customJobs"), "custom_jobs.create"),
    ("GET", re.compile(_LOCATION + r"/customJobs/(?P<id>[^/:]+)"), "custom_jobs.get"),
    ("POST", re.compile(_LOCATION + r"/customJobs/(?P<id>[^/:]+):cancel"), "custom_jobs.cancel"),
]
DEFAULT_STATES = ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")


@dataclass
class Script:
    states: list[str]
    error: str = ""  # the job's error message once it is FAILED
    gate: threading.Event | None = None


@dataclass
class _Job:
    resource: dict
    script: Script
    step: int = 0
    polls: list[str] = field(default_factory=list)  # the state each GET answered


class CustomJobs:
    def __init__(self) -> None:
        self.scripts: list[Script] = [Script(list(DEFAULT_STATES))]
        self.bodies: list[dict] = []  # create requests, in order
        self.jobs: dict[str, _Job] = {}  # by resource name, in creation order

    def create(self, request, *, parent: str) -> dict:
        self.bodies.append(request.body or {})
        index = len(self.jobs)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        name = f"{parent}/customJobs/{1000 + index}"
        now = _now()
        resource = {**(request.body or {}), "name": name, "createTime": now, "updateTime": now}
        self.jobs[name] = _Job(resource=resource, script=script)
        return {**resource, "state": "JOB_STATE_PENDING"}

    def get(self, request, *, parent: str, id: str) -> dict:
        job = self._find(f"{parent}/customJobs/{id}")
        states = job.script.states
        held = job.script.gate is not None and not job.script.gate.is_set()
        if job.polls and job.step < len(states) - (2 if held else 1):
            job.step += 1
        state = states[job.step]
        job.polls.append(state)
        job.resource.update(state=state, updateTime=_now())
        if state == "JOB_STATE_FAILED":
            job.resource["error"] = {"code": 13, "message": job.script.error}
        return job.resource

    def cancel(self, request, *, parent: str, id: str) -> dict:
        job = self._find(f"{parent}/customJobs/{id}")
        job.script = Script([*job.script.states[: job.step + 1], "JOB_STATE_CANCELLED"])
        return {}

    def states(self) -> list[list[str]]:
        """The states each job was seen in, GET by GET."""
        return [job.polls for job in self.jobs.values()]

    def _find(self, name: str) -> _Job:
        if name not in self.jobs:
            from tests.support.vertex_fake import _Error

            raise _Error(404, "NOT_FOUND", f"CustomJob {name} is not found.")
        return self.jobs[name]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
