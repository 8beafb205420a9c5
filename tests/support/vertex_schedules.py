"""Schedules for the loopback Vertex AI API (tests.support.vertex_fake): create, list, get,
update (with its updateMask), pause, resume (with catchUp), delete, and firing a schedule the
way Vertex does when its time comes.

    schedule = vertex_fake.schedules.items[name]         # the stored resource, camelCase JSON
    job_name = vertex_fake.schedules.fire(name)          # a PipelineJob from its stored request

As on Vertex: `displayName`, `cron`, `maxConcurrentRunCount` and `createPipelineJobRequest` are
required; a cron that does not parse is 400; a new schedule is ACTIVE with `startedRunCount`
"0" (int64 fields are JSON strings) and a `nextRunTime`; only an ACTIVE schedule pauses and
only a PAUSED one resumes (else 400 FAILED_PRECONDITION); an update names its fields in
`updateMask` (camelCase or snake_case) and may change only those Vertex lets change; delete
answers a finished Operation. List filters (`display_name="..."`) are evaluated
(tests.support.filters).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support.filters import parse_time

_LOCATION = r"/v1/(?P<parent>projects/[^/]+/locations/[^/]+)"
_ONE = _LOCATION + r"/schedules/(?P<id>[^/:]+)"
ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("POST", re.compile(_LOCATION + r"/schedules"), "schedules.create"),
    ("GET", re.compile(_LOCATION + r"/schedules"), "schedules.list"),
    ("GET", re.compile(_ONE), "schedules.get"),
    ("PATCH", re.compile(_ONE), "schedules.update"),
    ("DELETE", re.compile(_ONE), "schedules.delete"),
    ("POST", re.compile(_ONE + r":pause"), "schedules.pause"),
    ("POST", re.compile(_ONE + r":resume"), "schedules.resume"),
]
REQUIRED = ("displayName", "cron", "maxConcurrentRunCount", "createPipelineJobRequest")
UPDATABLE = (
    *("displayName", "cron", "startTime", "endTime", "maxRunCount", "maxConcurrentRunCount"),
    *("allowQueueing", "createPipelineJobRequest"),
)
FILTER_FIELDS = {"display_name": ("displayName",), "state": ("state",)}


class Schedules:
    def __init__(self, fake) -> None:
        self.fake = fake  # the VertexFake, whose PipelineJobs a fired schedule creates
        self.items: dict[str, dict] = {}  # by resource name, in creation order

    def create(self, request, *, parent: str) -> dict:
        body = dict(request.body or {})
        missing = [field for field in REQUIRED if not body.get(field)]
        if missing:
            raise _error(400, "INVALID_ARGUMENT", f"missing required fields: {missing}")
        name = f"{parent}/schedules/{7000 + len(self.items)}"
        now = _now()
        schedule = {**body, "name": name, "state": "ACTIVE", "startedRunCount": "0"}
        schedule.update(createTime=now, updateTime=now, nextRunTime=_next_run(body))
        self.items[name] = schedule
        return schedule

    def list(self, request, *, parent: str) -> dict:
        from tests.support.vertex_fake import selected

        found = selected(self.items, request, parent=parent, fields=FILTER_FIELDS)
        return {"schedules": found} if found else {}

    def get(self, request, *, parent: str, id: str) -> dict:
        return self._find(f"{parent}/schedules/{id}")

    def update(self, request, *, parent: str, id: str) -> dict:
        schedule = self._find(f"{parent}/schedules/{id}")
        paths = [_camel(p) for p in request.query.get("updateMask", "").split(",") if p]
        if not paths or any(p not in UPDATABLE for p in paths):
            raise _error(400, "INVALID_ARGUMENT", f"bad updateMask {paths}: allowed {UPDATABLE}")
        for path in paths:
            if path in (request.body or {}):
                schedule[path] = request.body[path]
            else:
                schedule.pop(path, None)
        schedule.update(updateTime=_now(), nextRunTime=_next_run(schedule))
        return schedule

    def pause(self, request, *, parent: str, id: str) -> dict:
        schedule = self._in_state(f"{parent}/schedules/{id}", "ACTIVE", "pause")
        schedule.update(state="PAUSED", lastPauseTime=_now())
        return {}

    def resume(self, request, *, parent: str, id: str) -> dict:
        schedule = self._in_state(f"{parent}/schedules/{id}", "PAUSED", "resume")
        schedule.update(state="ACTIVE", lastResumeTime=_now())
        schedule["catchUp"] = bool((request.body or {}).get("catchUp", False))
        return {}

    def delete(self, request, *, parent: str, id: str) -> dict:
        name = f"{parent}/schedules/{id}"
        self._find(name)
        del self.items[name]
        empty = {"@type": "type.googleapis.com/google.protobuf.Empty"}
        return {"name": f"{parent}/operations/{id}0", "done": True, "response": empty}

    def fire(self, name: str, *, states: list[str] | None = None) -> str:
        """Start a run as Vertex does at a scheduled time: a PipelineJob from the stored
        request, named after the schedule, with `scheduleName`; returns the job's name."""
        schedule = self._find(name)
        request = schedule["createPipelineJobRequest"]
        count = int(schedule["startedRunCount"]) + 1
        slug = re.sub(r"[^a-z0-9-]+", "-", schedule["displayName"].lower()).strip("-")
        job_id = f"{slug}-{datetime.now(UTC):%Y%m%d%H%M%S}{count:03d}"
        job = {**request["pipelineJob"], "scheduleName": name}
        job_name = self.fake.add_job(request["parent"], job_id, job, states=states)
        schedule["startedRunCount"] = str(count)
        schedule["lastScheduledRunResponse"] = {"scheduledRunTime": _now(), "runResponse": job_name}
        return job_name

    def _in_state(self, name: str, state: str, verb: str) -> dict:
        schedule = self._find(name)
        if schedule["state"] != state:
            message = f"Schedule {name} is {schedule['state']}; only {state} ones {verb}."
            raise _error(400, "FAILED_PRECONDITION", message)
        return schedule

    def _find(self, name: str) -> dict:
        if name not in self.items:
            raise _error(404, "NOT_FOUND", f"Schedule {name} is not found.")
        return self.items[name]


def _next_run(schedule: dict) -> str:
    """Vertex's nextRunTime: the cron's first time after now (and after startTime)."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim, CronSimError

    text = schedule["cron"]
    zone = "UTC"
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, text = text.split(None, 1)
        zone = prefix.split("=", 1)[1]
    start = max(datetime.now(UTC), parse_time(schedule.get("startTime", "1970-01-01T00:00:00Z")))
    try:
        when = next(CronSim(text, start.astimezone(ZoneInfo(zone))))
    except (CronSimError, ValueError, KeyError) as err:
        raise _error(400, "INVALID_ARGUMENT", f"invalid cron {schedule['cron']!r}: {err}") from None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.title() for part in rest)


def _error(code: int, status: str, message: str):
    from tests.support.vertex_fake import _Error

    return _Error(code, status, message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
