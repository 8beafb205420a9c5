"""`liftoff status`, `logs`, `cancel` and `runs`: watching runs on Vertex AI or on this machine.
Registered in pipelines.cli's COMMAND_GROUPS; imports nothing heavy until a command runs.

    liftoff status llm-finetune-20260105-030000-ab12 --watch      # or a resource name or URL
    liftoff logs llm-finetune-20260105-030000-ab12 --task train --follow
    liftoff logs RUN --severity ERROR
    liftoff cancel RUN
    liftoff runs llm-finetune

The target: a run recorded under --workdir (.liftoff/runs/RUN) is local, any other run is on
Vertex; `runs` lists Vertex's when a project is set (flag, LIFTOFF_PROJECT, liftoff.toml), else
the local ones. `--target` says which outright.
"""

from __future__ import annotations

import argparse
import json

EXAMPLES = {
    "status": "examples:\n  liftoff status llm-finetune-20260105-030000-ab12\n"
    "  liftoff status https://console.cloud.google.com/vertex-ai/locations/us-central1/"
    "pipelines/runs/RUN?project=my-proj --watch\n"
    "  liftoff status RUN --json",
    "logs": "examples:\n  liftoff logs RUN --task train --follow\n"
    "  liftoff logs RUN --severity ERROR --limit 50",
    "cancel": "example:\n  liftoff cancel llm-finetune-20260105-030000-ab12",
    "runs": "examples:\n  liftoff runs llm-finetune\n  liftoff runs --target local",
}
ENDED_OK = "SUCCEEDED"


def register(command) -> None:
    status = command("status", "a run's state and its tasks'", EXAMPLES["status"])
    _run(status)
    status.add_argument("--watch", action="store_true", help="refresh until the run ends")
    status.add_argument("--json", action="store_true", help="JSON for scripts (a line each)")
    status.set_defaults(handler=show_status)
    logs = command("logs", "a run's logs (Cloud Logging, or local step logs)", EXAMPLES["logs"])
    _run(logs)
    logs.add_argument("--task", help="one task's logs (e.g. train)")
    logs.add_argument("--follow", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--severity", help="at least this severity (Vertex): WARNING, ERROR, ...")
    logs.add_argument("--limit", type=int, default=200, help="the newest entries first shown")
    logs.set_defaults(handler=show_logs)
    cancel = command("cancel", "cancel a run on Vertex AI", EXAMPLES["cancel"])
    _run(cancel)
    cancel.set_defaults(handler=cancel_run)
    runs = command("runs", "recent runs, with state and duration", EXAMPLES["runs"])
    runs.add_argument("pipeline", nargs="?", help="only this pipeline's")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true")
    _where(runs)
    runs.set_defaults(handler=list_runs)


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a job id, projects/P/locations/R/pipelineJobs/ID, or its URL")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between refreshes")
    _where(p)


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", choices=("auto", "vertex", "local"), default="auto")
    p.add_argument("--workdir", default=".liftoff", help="where local runs are recorded")
    p.add_argument("--project")
    p.add_argument("--region")
    p.add_argument("--api-endpoint", help="Vertex API endpoint (http:// loopback: tests)")


def show_status(args) -> int:
    from pipelines.watch import poll

    read = _status_reader(args)
    if not args.watch:
        print(_show(read(), as_json=args.json))
        return 0
    shown = None
    for status in poll(read, interval_s=args.interval):
        if _changes(status) != shown:
            shown = _changes(status)
            print(_show(status, as_json=args.json) + ("" if args.json else "\n"), flush=True)
    # As a wait in a script: the run's outcome is the exit status.
    return 0 if status["state"] == ENDED_OK else 1


def _show(status: dict, *, as_json: bool) -> str:
    from pipelines.cron import user_zone
    from pipelines.run_view import status_lines

    return json.dumps(status) if as_json else "\n".join(status_lines(status, zone=user_zone()))


def _changes(status: dict) -> tuple:
    """What a refresh must show again when it differs (times alone do not)."""
    tasks = [(t["name"], t["state"], (t["custom_job"] or {}).get("state")) for t in status["tasks"]]
    return status["state"], tuple(tasks)


def _status_reader(args):
    if _target(args) == "local":
        from pipelines.local_records import local_status

        return lambda: local_status(args.workdir, args.run)
    from pipelines.vertex_api import run_name
    from pipelines.watch import run_status

    where, name = run_name(args.run, _flags(args))
    return lambda: run_status(name, where=where)


def show_logs(args) -> int:
    if _target(args) == "local":
        return _local_logs(args)
    from pipelines import logs
    from pipelines.cron import user_zone
    from pipelines.vertex_api import run_name
    from pipelines.watch import get_job

    severity = logs.check_severity(args.severity)
    where, name = run_name(args.run, _flags(args))
    options = {"where": where, "task": args.task, "severity": severity, "limit": args.limit}
    if args.follow:
        entries = logs.follow_entries(
            lambda: get_job(name, where=where), interval_s=args.interval, **options
        )
    else:
        entries = logs.latest_entries(get_job(name, where=where), **options)
    zone = user_zone()
    for entry in entries:
        print(entry.line(zone), flush=True)
    return 0


def _local_logs(args) -> int:
    from pipelines.local_records import local_log_lines

    if args.severity:
        raise ValueError("--severity filters Vertex logs; a local run's step logs are plain text")
    for line in local_log_lines(
        args.workdir, args.run, task=args.task, follow=args.follow, interval_s=args.interval
    ):
        print(line, flush=True)
    return 0


def cancel_run(args) -> int:
    if _target(args) == "local":
        raise ValueError(
            f"run {args.run} runs on this machine: stop it with Ctrl-C where liftoff run runs"
        )
    from pipelines.vertex_api import run_name
    from pipelines.watch import cancel_run as cancel
    from pipelines.watch import run_state

    where, name = run_name(args.run, _flags(args))
    cancel(name, where=where)
    print(f"cancelling {name} (now {run_state(name, where=where)}): its running tasks stop")
    return 0


def list_runs(args) -> int:
    from pipelines.cron import user_zone
    from pipelines.run_view import runs_lines

    if _target(args) == "local":
        from pipelines.local_records import list_local_runs

        rows = list_local_runs(args.workdir, pipeline=args.pipeline, limit=args.limit)
        where = f"{args.workdir}/runs"
    else:
        from pipelines.vertex_api import resolve_location
        from pipelines.watch import list_runs as vertex_runs

        location = resolve_location(_flags(args))
        rows = vertex_runs(location, pipeline=args.pipeline, limit=args.limit)
        where = location.parent
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no runs in {where}" + (f" of {args.pipeline}" if args.pipeline else ""))
    else:
        print("\n".join(runs_lines(rows, zone=user_zone())))
    return 0


def _target(args) -> str:
    """`--target`, else local for a run recorded under --workdir (or, for `runs`, when no
    Vertex project is set anywhere), else vertex."""
    if args.target != "auto":
        return args.target
    run = getattr(args, "run", None)
    if run is not None:
        from pipelines.local_records import has_local_run

        return "local" if has_local_run(args.workdir, run) else "vertex"
    from pipelines.settings import lookup

    found, _ = lookup(["project"], {"project": args.project})
    return "vertex" if found else "local"


def _flags(args) -> dict:
    return {"project": args.project, "region": args.region, "api_endpoint": args.api_endpoint}
