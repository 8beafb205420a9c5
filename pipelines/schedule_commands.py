"""`liftoff schedule ...`: recurring retrains on Vertex AI (pipelines/schedules.py). Registered
in pipelines.cli's COMMAND_GROUPS; imports nothing heavy until a command runs.

    liftoff schedule create --name weekly-sft --cron "TZ=Europe/Berlin 0 3 * * 1" \\
        --template https://us-central1-kfp.pkg.dev/my-proj/liftoff-pipelines/llm-finetune@rc1
    liftoff schedule show weekly-sft
    liftoff schedule pause weekly-sft
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime

EXAMPLE = (
    "examples:\n  liftoff schedule create --template \\\n"
    "    https://us-central1-kfp.pkg.dev/my-proj/liftoff-pipelines/llm-finetune@reviewed \\\n"
    '    --name weekly-sft --cron "TZ=Europe/Berlin 0 3 * * 1" \\\n'
    "    --param data=gs://my-proj-liftoff/data/train.jsonl\n"
    "  liftoff schedule list\n  liftoff schedule show weekly-sft\n"
    "  liftoff schedule update weekly-sft --cron 'TZ=Europe/Berlin 0 4 * * 1'\n"
    "  liftoff schedule pause weekly-sft\n  liftoff schedule resume weekly-sft --catch-up\n"
    "  liftoff schedule runs weekly-sft"
)
LOCAL_REFUSAL = (
    "schedules run on Vertex AI (projects.locations.schedules); the local target has none: "
    "for a local retrain, run `liftoff run` from cron (crontab -e)"
)


def register(command) -> None:
    _schedule_parsers(command("schedule", "recurring retrains on Vertex AI", EXAMPLE))


def _schedule_parsers(schedule: argparse.ArgumentParser) -> None:
    from pipelines.template_commands import compile_options

    sub = schedule.add_subparsers(dest="schedule_command", required=True, metavar="COMMAND")
    create = _sub(sub, "create", "schedule a pipeline or a template on a cron")
    create.add_argument("pipeline", nargs="?", help="pipeline name (or --template)")
    create.add_argument(
        "--template", help="a pushed template: https://...-kfp.pkg.dev/P/R/NAME@TAG"
    )
    create.add_argument("--name", required=True, help="the schedule's name")
    create.add_argument("--cron", required=True, help='"[TZ=Area/City] MIN HOUR DAY MONTH WEEKDAY"')
    create.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    create.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    compile_options(create)
    _timing(create)
    create.add_argument("--cache", action="store_true", help="let runs reuse cached steps")
    create.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    for flag in ("--pipeline-root", "--service-account"):
        create.add_argument(flag)
    _vertex(create)
    create.set_defaults(handler=schedule_create)
    update = _sub(sub, "update", "change a schedule's cron, times or limits")
    update.add_argument("schedule", help="its name or id")
    update.add_argument("--cron")
    update.add_argument("--rename", help="a new name")
    _timing(update)
    _vertex(update)
    update.set_defaults(handler=schedule_update)
    for name, help in (
        ("list", "the schedules of the project and region"),
        ("show", "a schedule: state, next runs, last run"),
        ("pause", "pause a schedule"),
        ("resume", "resume a paused schedule"),
        ("delete", "delete a schedule (its runs stay)"),
        ("runs", "the runs a schedule started"),
    ):
        p = _sub(sub, name, help)
        if name != "list":
            p.add_argument("schedule", help="its name or id")
        _vertex(p)
        p.set_defaults(handler=globals()[f"schedule_{name}"])
        if name in ("show", "list", "runs"):
            p.add_argument("--json", action="store_true", help="JSON for scripts")
    sub.choices["resume"].add_argument(
        "--catch-up", action="store_true", help="start the runs missed while paused"
    )
    sub.choices["runs"].add_argument("--limit", type=int, default=20)


def _sub(sub, name: str, help: str) -> argparse.ArgumentParser:
    from pipelines import cli

    return cli._command(sub, name, help, EXAMPLE)


def _timing(p) -> None:
    p.add_argument("--max-concurrent", type=int, help="runs at once (default 1)")
    p.add_argument("--max-runs", type=int, help="stop after this many runs")
    p.add_argument("--start", help="no run before (ISO 8601; your zone unless it has one)")
    p.add_argument("--end", help="no run after")
    p.add_argument(
        "--allow-queueing",
        action=argparse.BooleanOptionalAction,
        help="queue a run that would exceed --max-concurrent",
    )


def _vertex(p) -> None:
    p.add_argument("--project")
    p.add_argument("--region")
    p.add_argument("--api-endpoint", help="Vertex API endpoint (http:// loopback: tests)")
    p.add_argument("--target", choices=("vertex", "local"), default="vertex")


# --- schedules --------------------------------------------------------------------------------


def schedule_create(args) -> int:
    from pipelines import schedules
    from pipelines.runnable import prepare
    from pipelines.settings import resolve_settings

    _refuse_local(args)
    timing = _parse_timing(args, cron=args.cron)
    settings = resolve_settings(
        _flags(args, "project", "region", "pipeline_root", "service_account", "api_endpoint")
    )
    if not settings.service_account:
        raise ValueError(
            "--service-account is required for a schedule, the identity of every step of its "
            "runs (or LIFTOFF_SERVICE_ACCOUNT, or service_account in liftoff.toml [vertex])"
        )
    with tempfile.TemporaryDirectory(prefix="liftoff-schedule-") as tmp:
        what = prepare(args, directory=tmp)
        labels = _schedule_labels(args, pipeline=what.pipeline)
        where = _location(settings)
        _run_params(what, where=where, resolve=not args.dry_run)
        body = schedules.schedule_body(
            what,
            settings=settings,
            timing=timing,
            display_name=args.name,
            labels=labels,
            enable_caching=args.cache,
        )
        if args.dry_run:
            print(json.dumps({"parent": where.parent, "schedule": body}, indent=2, sort_keys=True))
            return 0
        created = schedules.create_schedule(body, where=where)
    print(f"created schedule {created['displayName']}: {created['name']}")
    _print_schedule(created, where=where)
    return 0


def _schedule_labels(args, *, pipeline: str) -> dict[str, str]:
    import re

    from pipelines.commands import _pairs
    from pipelines.preflight import check_labels
    from pipelines.schedules import SCHEDULE_LABEL

    slug = re.sub(r"[^a-z0-9_-]+", "-", args.name.lower()).strip("-")[:63]
    labels = {**_pairs(args.label, "--label"), "liftoff-pipeline": pipeline, SCHEDULE_LABEL: slug}
    check_labels(labels)
    return labels


def _run_params(what, *, where, resolve: bool) -> None:
    """What every run of the schedule gets: the commit as a model label when compiled here (a
    template's tags name its own), never a run's name; the model to retrain as a version of."""
    from pipelines.commands import _git_label
    from pipelines.schedules import resolve_parent_model

    params = what.params
    if not what.template_uri:
        params["model_labels"] = {**_git_label(), **params.get("model_labels", {})}
    values = {**what.defaults, **params}
    if resolve and values.get("parent_model") == "" and values.get("model_name"):
        params["parent_model"] = resolve_parent_model(where, model_name=values["model_name"])


def schedule_list(args) -> int:
    from pipelines.cron import user_zone
    from pipelines.run_view import schedules_lines
    from pipelines.schedules import list_schedules

    found = list_schedules(_where(args))
    if args.json:
        print(json.dumps(found, indent=2, sort_keys=True))
    elif not found:
        print("no schedules (liftoff schedule create)")
    else:
        print("\n".join(schedules_lines(found, zone=user_zone())))
    return 0


def schedule_show(args) -> int:
    from pipelines.schedules import get_schedule

    where, name = _named(args)
    schedule = get_schedule(name, where=where)
    if args.json:
        from pipelines.schedules import upcoming

        next_runs = [t.isoformat() for t in upcoming(schedule, now=datetime.now(UTC))]
        print(json.dumps({**schedule, "liftoffNextRuns": next_runs}, indent=2, sort_keys=True))
        return 0
    _print_schedule(schedule, where=where, header=True)
    return 0


def schedule_update(args) -> int:
    from pipelines.cron import parse_cron
    from pipelines.schedules import update_schedule

    changes = {"cron": parse_cron(args.cron).text} if args.cron else {}
    changes.update(_limits(args))
    if args.rename:
        changes["displayName"] = args.rename
    if not changes:
        raise ValueError("nothing to update: give --cron, --max-runs, --max-concurrent, ...")
    where, name = _named(args)
    updated = update_schedule(name, where=where, changes=changes)
    print(f"updated {', '.join(sorted(changes))} of schedule {updated['displayName']}")
    _print_schedule(updated, where=where)
    return 0


def schedule_pause(args) -> int:
    from pipelines.schedules import pause_schedule

    where, name = _named(args)
    pause_schedule(name, where=where)
    print(f"paused {name}: no runs start until liftoff schedule resume")
    return 0


def schedule_resume(args) -> int:
    from pipelines.schedules import resume_schedule

    where, name = _named(args)
    resume_schedule(name, where=where, catch_up=args.catch_up)
    missed = "the runs missed while paused start now" if args.catch_up else "missed runs skipped"
    print(f"resumed {name} ({missed})")
    return 0


def schedule_delete(args) -> int:
    from pipelines.schedules import delete_schedule

    where, name = _named(args)
    delete_schedule(name, where=where)
    print(f"deleted {name} (the runs it started stay)")
    return 0


def schedule_runs(args) -> int:
    from pipelines.cron import user_zone
    from pipelines.run_view import runs_lines
    from pipelines.watch import list_runs

    where, name = _named(args)
    rows = list_runs(where, schedule=name, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"{args.schedule} has started no runs yet")
    else:
        print("\n".join(runs_lines(rows, zone=user_zone())))
    return 0


def _print_schedule(schedule: dict, *, where, header: bool = False) -> None:
    """The schedule's lines; without `header` (its name and state), indented under the line
    that said what was done to it."""
    from pipelines.cron import user_zone
    from pipelines.run_view import schedule_lines
    from pipelines.schedules import upcoming
    from pipelines.watch import run_state

    last = schedule.get("lastScheduledRunResponse", {}).get("runResponse", "")
    state = run_state(last, where=where) if last else ""
    times = upcoming(schedule, now=datetime.now(UTC))
    lines = schedule_lines(schedule, zone=user_zone(), next_runs=times, last_run_state=state)
    print("\n".join(lines if header else [f"  {line}" for line in lines[1:]]))


def _parse_timing(args, *, cron: str):
    from pipelines.cron import parse_cron, parse_time, user_zone
    from pipelines.schedules import Timing

    zone = user_zone()
    start = parse_time(args.start, what="--start", zone=zone) if args.start else None
    end = parse_time(args.end, what="--end", zone=zone) if args.end else None
    if start and end and end <= start:
        raise ValueError(f"--end {args.end!r} is not after --start {args.start!r}")
    limits = {
        "max_concurrent": args.max_concurrent or 1,
        "max_runs": args.max_runs,
        "allow_queueing": bool(args.allow_queueing),
    }
    _check_counts(args)
    return Timing(cron=parse_cron(cron), start=start, end=end, **limits)


def _limits(args) -> dict:
    """The limits an update names (only those given)."""
    from pipelines.cron import parse_time, rfc3339, user_zone

    _check_counts(args)
    changes = {}
    if args.max_concurrent is not None:
        changes["maxConcurrentRunCount"] = str(args.max_concurrent)
    if args.max_runs is not None:
        changes["maxRunCount"] = str(args.max_runs)
    if args.allow_queueing is not None:
        changes["allowQueueing"] = args.allow_queueing
    for flag, field in (("start", "startTime"), ("end", "endTime")):
        if getattr(args, flag):
            when = parse_time(getattr(args, flag), what=f"--{flag}", zone=user_zone())
            changes[field] = rfc3339(when)
    return changes


def _check_counts(args) -> None:
    for flag in ("max_concurrent", "max_runs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {value}: must be at least 1")


def _refuse_local(args) -> None:
    if args.target == "local":
        raise ValueError(LOCAL_REFUSAL)


def _named(args):
    """(where, the resource name of the schedule the command names)."""
    from pipelines.schedules import find_schedule

    where = _where(args)
    return where, find_schedule(args.schedule, where=where)


def _where(args):
    from pipelines.vertex_api import resolve_location

    _refuse_local(args)
    return resolve_location(_flags(args, "project", "region", "api_endpoint"))


def _location(settings):
    from pipelines.vertex_api import Location

    return Location(
        project=settings.project, region=settings.region, api_endpoint=settings.api_endpoint
    )


def _flags(args, *names: str) -> dict:
    return {name: getattr(args, name, None) for name in names}
