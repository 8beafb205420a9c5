"""How `liftoff status`, `runs` and `schedule` show what they read: plain lines, times in the
user's zone.

    print("\n".join(status_lines(status, zone=user_zone())))     # pipelines/watch.py's status
    print("\n".join(runs_lines(rows, zone=zone)))
    print("\n".join(schedule_lines(schedule, zone=zone, next_runs=times, last_run_state="")))
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from pipelines.cron import show_time
from pipelines.watch import duration_s, parse_time, short_state


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def clock(text: str, *, zone: tzinfo) -> str:
    return parse_time(text).astimezone(zone).strftime("%H:%M:%S") if text else "-"


def when(text: str, *, zone: tzinfo) -> str:
    return show_time(parse_time(text), zone=zone) if text else "-"


def status_lines(status: dict, *, zone: tzinfo, now: datetime | None = None) -> list[str]:
    took = duration(duration_s(status["started"], status["ended"], now=now))
    lines = [
        f"{status['run']}  {status['state']}  {status['pipeline']}  "
        f"started {when(status['started'], zone=zone)} ({took})"
    ]
    if status["console_url"]:
        lines.append(f"console: {status['console_url']}")
    if status["schedule"]:
        lines.append(f"schedule: {status['schedule']}")
    if status["error"]:
        lines.append(f"error: {status['error']}")
    lines.append(f"{'TASK':<24} {'STATE':<14} {'STARTED':<9} {'ENDED':<9} TOOK")
    for task in status["tasks"]:
        took = duration(duration_s(task["started"], task["ended"], now=now))
        started, ended = clock(task["started"], zone=zone), clock(task["ended"], zone=zone)
        lines.append(f"{task['name']:<24} {task['state']:<14} {started:<9} {ended:<9} {took}")
        if task["custom_job"]:
            lines.extend(f"  {line}" for line in custom_job_lines(task["custom_job"]))
        if task["error"]:
            lines.append(f"  error: {task['error']}")
        if task.get("log") and task["state"] in ("failed", "FAILED"):
            lines.append(f"  log: {task['log']}")
    return lines


def custom_job_lines(job: dict) -> list[str]:
    machine = job["machine_type"]
    if job["accelerator_count"]:
        machine += f" with {job['accelerator_count']}x {job['accelerator_type']}"
    nodes = "node" if job["replicas"] == 1 else "nodes"
    lines = [
        f"CustomJob {job['name'].rsplit('/', 1)[-1]}: {job['state']} on {job['replicas']} "
        f"{nodes} of {machine}, {job['scheduling']}"
    ]
    lines.extend(f"web access {node}: {uri}" for node, uri in sorted(job["web_access"].items()))
    if job["error"]:
        lines.append(f"error: {job['error']}")
    return lines


def runs_lines(rows: list[dict], *, zone: tzinfo, now: datetime | None = None) -> list[str]:
    lines = [f"{'RUN':<48} {'PIPELINE':<16} {'STATE':<10} {'CREATED':<24} TOOK"]
    for row in rows:
        took = duration(duration_s(row["started"], row["ended"], now=now))
        created = when(row["created"], zone=zone)
        lines.append(
            f"{row['run']:<48} {row['pipeline']:<16} {row['state']:<10} {created:<24} {took}"
        )
    return lines


def schedules_lines(schedules: list[dict], *, zone: tzinfo) -> list[str]:
    lines = [f"{'SCHEDULE':<24} {'ID':<20} {'STATE':<9} {'NEXT RUN':<24} {'RUNS':<7} CRON"]
    for s in schedules:
        runs = s.get("startedRunCount", "0") + (
            f"/{s['maxRunCount']}" if "maxRunCount" in s else ""
        )
        next_run = when(s.get("nextRunTime", ""), zone=zone) if s["state"] == "ACTIVE" else "-"
        schedule_id = s["name"].rsplit("/", 1)[-1]
        lines.append(
            f"{s['displayName']:<24} {schedule_id:<20} {s['state']:<9} {next_run:<24} "
            f"{runs:<7} {s['cron']}"
        )
    return lines


def schedule_lines(
    schedule: dict, *, zone: tzinfo, next_runs: list[datetime], last_run_state: str
) -> list[str]:
    job = schedule.get("createPipelineJobRequest", {}).get("pipelineJob", {})
    pipeline = job.get("pipelineSpec", {}).get("pipelineInfo", {}).get("name", "")
    limits = f"at most {schedule.get('maxConcurrentRunCount', '1')} at once"
    if schedule.get("allowQueueing"):
        limits += ", later ones queued"
    if "maxRunCount" in schedule:
        limits += f", {schedule['maxRunCount']} runs in all"
    lines = [
        f"{schedule['displayName']}  {schedule['state']}  {schedule['name']}",
        f"runs: {pipeline}" + (f" ({job['templateUri']})" if job.get("templateUri") else ""),
        f"as: {job.get('serviceAccount') or '-'}",
        f"cron: {schedule['cron']} ({limits})",
        f"started runs: {schedule.get('startedRunCount', '0')}",
    ]
    for field, label in (("startTime", "from"), ("endTime", "until")):
        if field in schedule:
            lines.append(f"{label}: {when(schedule[field], zone=zone)}")
    last = schedule.get("lastScheduledRunResponse", {}).get("runResponse", "")
    if last:
        lines.append(f"last run: {last.rsplit('/', 1)[-1]} {short_state(last_run_state)}".rstrip())
    if next_runs:
        shown = ", ".join(show_time(t, zone=zone) for t in next_runs)
        lines.append(f"next runs: {shown}")
    return lines
