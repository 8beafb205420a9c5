"""Local runs as `liftoff status`, `logs` and `runs` read them: the record `liftoff run` keeps of
each run under its workdir.

    status = local_status(".liftoff", "llm-finetune-20260105-030000-4242")
    rows = list_local_runs(".liftoff", pipeline="llm-finetune", limit=20)
    path = step_log(".liftoff", run_id, "train")     # that step's whole log
    for line in local_log_lines(".liftoff", run_id, task="train", follow=True): ...

`<workdir>/runs/<run id>/run.json` holds {"pipeline", "run_id", "status" (RUNNING, SUCCEEDED,
FAILED), "started", "ended" (ISO 8601 UTC), "params", "error", "exit_code", "steps": [{"name",
"state" (waiting, running, done, failed, skipped), "started", "ended", "log" (relative to the
run directory), "error"}]}; each step's full log is `logs/<step>.log` there. A status has the
shape of pipelines/watch.py's, with `target` "local", each task's `log` path and no CustomJob.
"""

from __future__ import annotations

import glob
import json
import os
import re
import time
from collections.abc import Callable, Iterator

RECORD = "run.json"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def run_dir(workdir: str, run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run {run_id!r}: a local run id has letters, digits, '.', '_', '-'")
    return os.path.join(workdir, "runs", run_id)


def has_local_run(workdir: str, run_id: str) -> bool:
    return bool(_RUN_ID.fullmatch(run_id)) and os.path.isfile(
        os.path.join(run_dir(workdir, run_id), RECORD)
    )


def read_record(workdir: str, run_id: str) -> dict:
    path = os.path.join(run_dir(workdir, run_id), RECORD)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"run {run_id!r}: no local run record {path}") from None
    except json.JSONDecodeError as err:
        raise RuntimeError(f"{path}: not a run record: {err}") from None


def local_status(workdir: str, run_id: str) -> dict:
    record = read_record(workdir, run_id)
    directory = run_dir(workdir, run_id)
    return {
        "target": "local",
        "run": record.get("run_id", run_id),
        "name": directory,
        "pipeline": record.get("pipeline", ""),
        "state": record.get("status", ""),
        "created": record.get("started", ""),
        "started": record.get("started", ""),
        "ended": record.get("ended") or "",
        "error": record.get("error") or "",
        "schedule": "",
        "console_url": "",
        "tasks": [_step(step, directory=directory) for step in record.get("steps", [])],
    }


def _step(step: dict, *, directory: str) -> dict:
    return {
        "name": step.get("name", ""),
        "state": step.get("state", ""),
        "started": step.get("started") or "",
        "ended": step.get("ended") or "",
        "error": step.get("error") or "",
        "custom_job": None,
        "log": os.path.join(directory, step["log"]) if step.get("log") else "",
    }


def list_local_runs(workdir: str, *, pipeline: str | None = None, limit: int = 20) -> list[dict]:
    """The newest `limit` local runs, in the rows of pipelines/watch.py's list_runs."""
    rows = []
    for path in glob.glob(os.path.join(workdir, "runs", "*", RECORD)):
        run_id = os.path.basename(os.path.dirname(path))
        status = local_status(workdir, run_id)
        if pipeline and status["pipeline"] != pipeline:
            continue
        keys = ("run", "pipeline", "state", "created", "started", "ended", "schedule")
        rows.append({key: status[key] for key in keys})
    rows.sort(key=lambda row: row["started"], reverse=True)
    return rows[:limit]


def step_log(workdir: str, run_id: str, step: str) -> str:
    """The log file of step `step` of the run; ValueError naming the steps when none is so
    named."""
    tasks = local_status(workdir, run_id)["tasks"]
    for task in tasks:
        if task["name"] == step:
            return task["log"]
    names = ", ".join(t["name"] for t in tasks) or "none yet"
    raise ValueError(f"--task {step!r}: run {run_id} has no such step (steps: {names})")


def local_log_lines(
    workdir: str,
    run_id: str,
    *,
    task: str | None = None,
    follow: bool = False,
    interval_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """The lines of the run's step logs (one step's with `task`), each after its step's name;
    with `follow`, new lines as the steps write them, until the run has ended."""
    offsets: dict[str, int] = {}
    while True:
        status = local_status(workdir, run_id)
        tasks = [t for t in status["tasks"] if task in (None, t["name"])]
        if task and not tasks:
            step_log(workdir, run_id, task)  # raises, naming the steps
        for step in tasks:
            yield from _new_lines(step, offsets)
        if not follow or status["state"] != "RUNNING":
            return
        sleep(interval_s)


def _new_lines(step: dict, offsets: dict[str, int]) -> Iterator[str]:
    """The whole lines of `step`'s log after what `offsets` says was read, moving it on."""
    path = step["log"]
    if not path or not os.path.isfile(path):
        return
    with open(path, "rb") as f:
        f.seek(offsets.get(path, 0))
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]  # a partly written line waits for its end
    offsets[path] = offsets.get(path, 0) + len(complete)
    for line in complete.decode(errors="replace").splitlines():
        yield f"{step['name']:<14} {line}"
