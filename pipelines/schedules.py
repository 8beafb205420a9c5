"""Recurring retrains: Vertex AI schedules (projects.locations.schedules) that start a pipeline
run at the times of a cron.

    body = schedule_body(what, settings=settings, timing=Timing(cron=parse_cron("0 3 * * 1")),
                         display_name="weekly-sft", labels={"team": "ml"})
    schedule = create_schedule(body, where=where)        # REST JSON, as Vertex stored it
    name = find_schedule("weekly-sft", where=where)      # a display name, an id or a name
    update_schedule(name, where=where, changes={"cron": "TZ=Europe/Berlin 0 3 * * 1"})
    pause_schedule(name, where=where); resume_schedule(name, where=where, catch_up=True)

What a schedule stores is the create request of every run it starts, so it must be right for a
run that repeats: caching off (KFP caches on input values, and data refreshed in place at the
same gs:// path would be a cache hit); every training task writing under its own run's
directory (runnable.check_repeatable); nothing that names one run (liftoff_run is a label of a
submitted run, never a schedule's); the service account, which is also every step's identity;
and `parent_model` resolved by display name, so each retrain is a new version of one model
(its default only when the gate lets register run at all, as in every run).

Each function raises ValueError for what the user named wrong and RuntimeError for API
failures, both one line (pipelines/vertex_api.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from pipelines.cron import Cron, rfc3339
from pipelines.vertex_api import Location, as_json, call, client

# Schedule fields `update` may change: REST name -> the field mask's path.
UPDATABLE = {
    "displayName": "display_name",
    "cron": "cron",
    "startTime": "start_time",
    "endTime": "end_time",
    "maxRunCount": "max_run_count",
    "maxConcurrentRunCount": "max_concurrent_run_count",
    "allowQueueing": "allow_queueing",
}
SCHEDULE_LABEL = "liftoff-schedule"
_SCHEDULE = re.compile(r"projects/[^/]+/locations/[^/]+/schedules/[^/]+")


@dataclass(frozen=True, kw_only=True)
class Timing:
    cron: Cron
    max_concurrent: int = 1  # runs at once; with allow_queueing, later ones wait
    max_runs: int | None = None  # the schedule completes after this many
    start: datetime | None = None
    end: datetime | None = None
    allow_queueing: bool = False

    def fields(self) -> dict:
        """The Schedule's REST fields for these times and limits (int64 as strings)."""
        fields = {
            "cron": self.cron.text,
            "maxConcurrentRunCount": str(self.max_concurrent),
            "allowQueueing": self.allow_queueing,
        }
        if self.max_runs:
            fields["maxRunCount"] = str(self.max_runs)
        if self.start:
            fields["startTime"] = rfc3339(self.start)
        if self.end:
            fields["endTime"] = rfc3339(self.end)
        return fields


def schedule_body(
    what,
    *,
    settings,
    timing: Timing,
    display_name: str,
    labels: dict[str, str],
    enable_caching: bool = False,
) -> dict:
    """The Schedule to create, as REST JSON. `what`: a pipelines.runnable.Runnable whose params
    are final; `settings`: the SubmitSettings of its runs."""
    from pipelines.runnable import check_repeatable
    from pipelines.submit import dry_run_body

    check_repeatable(what.path)
    job = dry_run_body(
        what.path,
        settings=settings,
        display_name=display_name,
        parameter_values=what.params,
        labels=labels,
        # None keeps the template's own caching; False turns it off in every task.
        enable_caching=None if enable_caching else False,
    )
    if what.template_uri:
        job["templateUri"] = what.template_uri
    parent = f"projects/{settings.project}/locations/{settings.region}"
    request = {"parent": parent, "pipelineJob": job}
    return {"displayName": display_name, **timing.fields(), "createPipelineJobRequest": request}


def upcoming(schedule: dict, *, now: datetime) -> list[datetime]:
    """The next three run times of a schedule (REST JSON) if it is active, within its start,
    end and run limit."""
    from pipelines.cron import NUM_SHOWN, next_runs, parse_cron
    from pipelines.watch import parse_time

    if schedule["state"] != "ACTIVE":
        return []
    after = max(now, parse_time(schedule.get("startTime", rfc3339(now))))
    left = NUM_SHOWN
    if "maxRunCount" in schedule:
        left = min(left, int(schedule["maxRunCount"]) - int(schedule.get("startedRunCount", 0)))
    until = parse_time(schedule["endTime"]) if "endTime" in schedule else None
    cron = parse_cron(schedule["cron"], what="the schedule's cron")
    return next_runs(cron, after=after, until=until, count=max(0, left))


def resolve_parent_model(where: Location, *, model_name: str) -> str:
    """The one Vertex model named `model_name`, whose next version each retrain uploads."""
    models = client("ModelServiceClient", where)
    escaped = model_name.replace("\\", "\\\\").replace('"', '\\"')
    found = call(
        models.list_models,
        what=f"models named {model_name!r}",
        request={"parent": where.parent, "filter": f'display_name="{escaped}"'},
    )
    names = [model.name for model in found]
    if len(names) == 1:
        return names[0]
    if not names:
        raise ValueError(
            f"parent_model: no Vertex model is named {model_name!r} in {where.parent}: a "
            "schedule retrains an existing model (run liftoff submit once), or pass --param "
            "parent_model=projects/P/locations/R/models/ID"
        )
    raise ValueError(
        f"parent_model: {len(names)} Vertex models are named {model_name!r} "
        f"({', '.join(names)}): pass --param parent_model=... to choose one"
    )


def create_schedule(body: dict, *, where: Location) -> dict:
    from google.cloud import aiplatform_v1

    schedule = aiplatform_v1.Schedule.from_json(json.dumps(body))
    created = call(
        _schedules(where).create_schedule,
        what=f"schedule {body['displayName']!r}",
        parent=where.parent,
        schedule=schedule,
    )
    return as_json(created)


def list_schedules(where: Location, *, display_name: str | None = None) -> list[dict]:
    request = {"parent": where.parent}
    if display_name:
        request["filter"] = f'display_name="{display_name}"'
    found = call(_schedules(where).list_schedules, what=where.parent, request=request)
    return [as_json(schedule) for schedule in found]


def find_schedule(text: str, *, where: Location) -> str:
    """A schedule given by resource name, numeric id or display name -> its resource name."""
    if _SCHEDULE.fullmatch(text):
        return text
    if text.isdigit():
        return f"{where.parent}/schedules/{text}"
    found = [s["name"] for s in list_schedules(where, display_name=text)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(f"schedule {text!r}: no schedule has this name in {where.parent}")
    raise ValueError(f"schedule {text!r}: {len(found)} schedules have this name; use the id")


def get_schedule(name: str, *, where: Location) -> dict:
    return as_json(call(_schedules(where).get_schedule, what=f"schedule {name}", name=name))


def update_schedule(name: str, *, where: Location, changes: dict) -> dict:
    """`changes`: REST fields (UPDATABLE) -> new values; only those are sent, in updateMask."""
    from google.cloud import aiplatform_v1
    from google.protobuf import field_mask_pb2

    assert changes and set(changes) <= set(UPDATABLE), changes
    schedule = aiplatform_v1.Schedule.from_json(json.dumps({"name": name, **changes}))
    mask = field_mask_pb2.FieldMask(paths=[UPDATABLE[field] for field in changes])
    updated = call(
        _schedules(where).update_schedule,
        what=f"schedule {name}",
        schedule=schedule,
        update_mask=mask,
    )
    return as_json(updated)


def pause_schedule(name: str, *, where: Location) -> None:
    call(_schedules(where).pause_schedule, what=f"schedule {name}", name=name)


def resume_schedule(name: str, *, where: Location, catch_up: bool = False) -> None:
    """With `catch_up`, Vertex starts the runs missed while paused. (The SDK's
    `PipelineJobSchedule.resume(catch_up=True)` drops the flag; the GAPIC client sends it.)"""
    client_ = _schedules(where)
    call(client_.resume_schedule, what=f"schedule {name}", name=name, catch_up=catch_up)


def delete_schedule(name: str, *, where: Location) -> None:
    operation = call(_schedules(where).delete_schedule, what=f"schedule {name}", name=name)
    call(operation.result, what=f"deleting schedule {name}", timeout=300)


def _schedules(where: Location):
    return client("ScheduleServiceClient", where)
