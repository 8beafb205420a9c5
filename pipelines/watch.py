"""Watching runs on Vertex AI: a run's state and its tasks', the training CustomJob behind a
task, the recent runs of a project, and cancelling one.

    where, name = run_name("llm-finetune-20260105-030000-ab12", flags)   # pipelines/vertex_api
    status = run_status(name, where=where)      # {"state", "tasks": [...], ...}, see below
    rows = list_runs(where, pipeline="llm-finetune", limit=20)
    cancel_run(name, where=where)

A status is plain JSON (what `liftoff status --json` prints): `target` "vertex", `run` (the job
id), `name`, `pipeline`, `state` (RUNNING, SUCCEEDED, FAILED, CANCELLED, ... without Vertex's
prefix), `created`/`started`/`ended` (RFC 3339), `error`, `schedule`, `console_url`, and
`tasks`, each {name, state, started, ended, error, custom_job}. `custom_job` is the CustomJob a
GCPC step started (the training step: its task's `gcp_resources` output names it), read for its
state, machine, replicas, scheduling strategy, error and web-access URIs (`--enable-web-access`
at submit), else None. pipelines/local_records.py gives local runs the same shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from pipelines.vertex_api import Location, as_json, call, client, resource_id

ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")
_PREFIXES = ("PIPELINE_STATE_", "JOB_STATE_")
_CUSTOM_JOB = "/customJobs/"


def get_job(name: str, *, where: Location) -> dict:
    """The PipelineJob, as REST JSON."""
    pipelines = client("PipelineServiceClient", where)
    return as_json(call(pipelines.get_pipeline_job, what=f"run {name}", name=name))


def run_status(name: str, *, where: Location) -> dict:
    from pipelines.submit import CONSOLE_URL

    job = get_job(name, where=where)
    details = job.get("jobDetail", {}).get("taskDetails", [])
    # The root DAG's own task (no parent) is the run itself.
    tasks = [_task(t, where=where) for t in details if t.get("parentTaskId")]
    tasks.sort(key=lambda t: (t["started"] or "~", t["name"]))
    return {
        "target": "vertex",
        "run": resource_id(name),
        "name": name,
        "pipeline": job.get("pipelineSpec", {}).get("pipelineInfo", {}).get("name", ""),
        "state": short_state(job.get("state", "")),
        "created": job.get("createTime", ""),
        "started": job.get("startTime", ""),
        "ended": job.get("endTime", ""),
        "error": _message(job.get("error")),
        "schedule": job.get("scheduleName", ""),
        "console_url": CONSOLE_URL.format(
            region=where.region, job_id=resource_id(name), project=where.project
        ),
        "tasks": tasks,
    }


def run_state(name: str, *, where: Location) -> str:
    return short_state(get_job(name, where=where).get("state", ""))


def _task(detail: dict, *, where: Location) -> dict:
    job_name = custom_job_of(detail)
    return {
        "name": detail.get("taskName", ""),
        "state": short_state(detail.get("state", "")),
        "started": detail.get("startTime", ""),
        "ended": detail.get("endTime", ""),
        "error": _message(detail.get("error")),
        "custom_job": custom_job(job_name, where=where) if job_name else None,
    }


def custom_job_of(detail: dict) -> str:
    """The CustomJob a GCPC task started, from its `gcp_resources` output (a JSON string in
    the task's execution metadata); "" for any other task."""
    raw = detail.get("execution", {}).get("metadata", {}).get("output:gcp_resources")
    if not raw:
        return ""
    for resource in json.loads(raw).get("resources", []):
        uri = resource.get("resourceUri", "")
        if resource.get("resourceType") == "CustomJob" and _CUSTOM_JOB in uri:
            return uri[uri.index("projects/") :]
    return ""


def task_jobs(detail: dict) -> list[str]:
    """The ids of every CustomJob behind a task, whose logs are the task's: the container that
    ran it (its launcher, for a GCPC step) and the CustomJob a GCPC step started."""
    container = detail.get("executorDetail", {}).get("containerDetail", {})
    names = [container.get("mainJob", ""), *container.get("failedMainJobs", [])]
    names.append(custom_job_of(detail))
    return [resource_id(n) for n in dict.fromkeys(names) if n]


def custom_job(name: str, *, where: Location) -> dict:
    jobs = client("JobServiceClient", where)
    job = as_json(call(jobs.get_custom_job, what=f"CustomJob {name}", name=name))
    spec = job.get("jobSpec", {})
    pools = spec.get("workerPoolSpecs", [])
    machine = pools[0].get("machineSpec", {}) if pools else {}
    return {
        "name": name,
        "state": short_state(job.get("state", "")),
        "machine_type": machine.get("machineType", ""),
        "accelerator_type": machine.get("acceleratorType", ""),
        "accelerator_count": int(machine.get("acceleratorCount", 0)),
        "replicas": sum(int(pool.get("replicaCount", 0)) for pool in pools),
        "scheduling": spec.get("scheduling", {}).get("strategy", "STANDARD"),
        "web_access": job.get("webAccessUris", {}),
        "error": _message(job.get("error")),
    }


def list_runs(
    where: Location, *, pipeline: str | None = None, schedule: str | None = None, limit: int = 20
) -> list[dict]:
    """The newest `limit` runs (of one pipeline, or one schedule): run, pipeline, state,
    created, started, ended, schedule."""
    terms = []
    if pipeline:
        terms.append(f'pipeline_name="{pipeline}"')
    if schedule:
        terms.append(f'schedule_name="{schedule}"')
    request = {"parent": where.parent, "order_by": "create_time desc", "page_size": limit}
    if terms:
        request["filter"] = " AND ".join(terms)
    pipelines = client("PipelineServiceClient", where)
    found = call(pipelines.list_pipeline_jobs, what=f"runs in {where.parent}", request=request)
    rows = []
    for message in found:
        job = as_json(message)
        rows.append(
            {
                "run": resource_id(job["name"]),
                "pipeline": job.get("pipelineSpec", {}).get("pipelineInfo", {}).get("name", ""),
                "state": short_state(job.get("state", "")),
                "created": job.get("createTime", ""),
                "started": job.get("startTime", ""),
                "ended": job.get("endTime", ""),
                "schedule": job.get("scheduleName", ""),
            }
        )
        if len(rows) == limit:
            break
    return rows


def cancel_run(name: str, *, where: Location) -> None:
    """Ask Vertex to cancel the run: it stops its running tasks and ends CANCELLED."""
    pipelines = client("PipelineServiceClient", where)
    call(pipelines.cancel_pipeline_job, what=f"run {name}", name=name)


def poll(
    read: Callable[[], dict], *, interval_s: float, sleep: Callable[[float], None] = time.sleep
) -> Iterator[dict]:
    """`read()` again every `interval_s` until the run it reads has ended (the last included)."""
    while True:
        status = read()
        yield status
        if status["state"] in ENDED:
            return
        sleep(interval_s)


def short_state(state: str) -> str:
    for prefix in _PREFIXES:
        state = state.removeprefix(prefix)
    return state


def duration_s(started: str, ended: str, *, now: datetime | None = None) -> float | None:
    """Seconds from `started` to `ended` (or to now, when it has not ended)."""
    if not started:
        return None
    end = parse_time(ended) if ended else (now or datetime.now(UTC))
    return max(0.0, (end - parse_time(started)).total_seconds())


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _message(error: dict | None) -> str:
    return " ".join((error or {}).get("message", "").split())
