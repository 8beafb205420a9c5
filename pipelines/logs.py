"""A Vertex run's logs: the Cloud Logging entries of the run and of the CustomJobs behind its
tasks (a local run's step logs: pipelines/local_records.py).

    job = get_job(name, where=where)                  # pipelines/watch.py: the PipelineJob
    for entry in latest_entries(job, where=where, task="train", severity="ERROR", limit=200):
        print(entry.line(zone))
    for entry in follow_entries(lambda: get_job(name, where=where), where=where):
        ...                                           # until the run has ended

On Vertex a run logs under two monitored resources: the run itself (resource.type
`aiplatform.googleapis.com/PipelineJob`, label `pipeline_job_id`), and each task's CustomJobs
(`ml_job`, label `job_id`): the container that ran the task and, for the training step, the
CustomJob it started (pipelines/watch.py task_jobs). `--task` keeps one task's jobs. Following
reads `entries.list` again and again with a timestamp cursor (`timestamp>="T"`, entries at T
already shown skipped by insertId) until the run has ended. Logging's endpoint is
logging.googleapis.com unless LIFTOFF_LOGGING_ENDPOINT (or logging_endpoint in liftoff.toml
[vertex]) names another: a loopback fake in tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pipelines.cron import rfc3339
from pipelines.settings import check_endpoint, lookup
from pipelines.vertex_api import Location, call, resource_id
from pipelines.watch import ENDED, short_state, task_jobs

PIPELINE_RESOURCE = "aiplatform.googleapis.com/PipelineJob"
JOB_RESOURCE = "ml_job"
SEVERITIES = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Entry:
    timestamp: datetime
    severity: str
    source: str  # the task the entry came from, or "pipeline"
    message: str
    insert_id: str

    def line(self, zone: tzinfo) -> str:
        when = self.timestamp.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        return f"{when} {self.severity:<8} {self.source:<14} {self.message}"


def sources(job: dict, *, task: str | None = None) -> dict[str, str]:
    """CustomJob id -> the task it ran, for every task (or the one named `task`)."""
    details = [t for t in job.get("jobDetail", {}).get("taskDetails", []) if t.get("parentTaskId")]
    if task and task not in {t.get("taskName") for t in details}:
        names = ", ".join(sorted(t.get("taskName", "") for t in details)) or "none yet"
        raise ValueError(f"--task {task!r}: the run has no such task (tasks: {names})")
    return {
        job_id: detail["taskName"]
        for detail in details
        if task in (None, detail.get("taskName"))
        for job_id in task_jobs(detail)
    }


def entries_filter(
    job: dict, *, jobs: dict[str, str], task: str | None, severity: str | None, since: str
) -> str:
    """The Logging query for the run's entries at or after `since` (RFC 3339)."""
    parts = []
    if not task:
        run_id = resource_id(job["name"])
        parts.append(
            f'(resource.type="{PIPELINE_RESOURCE}" AND resource.labels.pipeline_job_id="{run_id}")'
        )
    if jobs:
        ids = " OR ".join(f'resource.labels.job_id="{job_id}"' for job_id in jobs)
        parts.append(f'(resource.type="{JOB_RESOURCE}" AND ({ids}))')
    if not parts:  # a task that has not started a job yet: nothing can match
        parts.append(f'resource.type="{JOB_RESOURCE}" AND resource.labels.job_id="-"')
    terms = [f'timestamp>="{since}"']
    if severity:
        terms.append(f"severity>={severity}")
    terms.append(f"({' OR '.join(parts)})")
    return " AND ".join(terms)


def check_severity(severity: str | None) -> str | None:
    if severity is None:
        return None
    if severity.upper() not in SEVERITIES:
        raise ValueError(f"--severity {severity!r}: one of {', '.join(SEVERITIES)}")
    return severity.upper()


def latest_entries(
    job: dict, *, where: Location, task=None, severity=None, limit: int = 200
) -> list[Entry]:
    """The run's newest `limit` entries, oldest first."""
    jobs = sources(job, task=task)
    query = entries_filter(job, jobs=jobs, task=task, severity=severity, since=job["createTime"])
    found = _list(where, query, newest_first=True, max_results=limit)
    return [_entry(e, jobs) for e in reversed(found)]


def follow_entries(
    read_job: Callable[[], dict],
    *,
    where: Location,
    task: str | None = None,
    severity: str | None = None,
    limit: int = 200,
    interval_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Entry]:
    """The newest `limit` entries, then each new one as it arrives, until the run has ended
    (the job is read before each query, so the last query sees everything before the end)."""
    job = read_job()
    shown = latest_entries(job, where=where, task=task, severity=severity, limit=limit)
    yield from shown
    cursor = rfc3339(shown[-1].timestamp) if shown else job["createTime"]
    seen = {e.insert_id for e in shown if shown and e.timestamp == shown[-1].timestamp}
    while short_state(job.get("state", "")) not in ENDED:
        sleep(interval_s)
        job = read_job()
        jobs = sources(job, task=task)
        query = entries_filter(job, jobs=jobs, task=task, severity=severity, since=cursor)
        fetched = [_entry(e, jobs) for e in _list(where, query)]
        yield from (e for e in fetched if e.insert_id not in seen)
        if fetched:
            # The entries at the cursor's own instant come again next time: skip them then.
            cursor = rfc3339(fetched[-1].timestamp)
            seen = {e.insert_id for e in fetched if e.timestamp == fetched[-1].timestamp}


def _list(where: Location, query: str, *, newest_first=False, max_results=None) -> list:
    from google.cloud.logging import ASCENDING, DESCENDING

    logging_client = _logging_client(where)
    found = logging_client.list_entries(
        resource_names=[f"projects/{where.project}"],
        filter_=query,
        order_by=DESCENDING if newest_first else ASCENDING,
        max_results=max_results,
        page_size=min(PAGE_SIZE, max_results or PAGE_SIZE),
    )
    return call(lambda: list(found), what=f"Cloud Logging in projects/{where.project}")


def _entry(entry, jobs: dict[str, str]) -> Entry:
    labels = entry.resource.labels if entry.resource else {}
    source = jobs.get(labels.get("job_id", ""), "pipeline")
    payload = entry.payload
    if isinstance(payload, dict):
        message = str(payload.get("message", payload))
    else:
        message = str(payload or "")
    return Entry(
        timestamp=entry.timestamp,
        severity=entry.severity or "DEFAULT",
        source=source,
        message=message.rstrip("\n"),
        insert_id=entry.insert_id or "",
    )


def _logging_client(where: Location):
    """Cloud Logging's client; on a loopback endpoint (a fake) JSON over plain HTTP with
    anonymous credentials, as for Vertex."""
    from google.cloud import logging

    found, origin = lookup(["logging_endpoint"], {})
    endpoint = found.get("logging_endpoint", "")
    if not endpoint:
        return logging.Client(project=where.project)
    check_endpoint(endpoint, source=origin["logging_endpoint"])
    if not endpoint.startswith("http://"):
        return logging.Client(
            project=where.project, client_options={"api_endpoint": f"https://{endpoint}"}
        )
    from google.auth.credentials import AnonymousCredentials

    return logging.Client(
        project=where.project,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": endpoint},
    )
