"""The record `liftoff run` keeps of a local run as it goes, for `liftoff status/logs/runs`
(pipelines/local_records.py reads it) and for the run's own summary.

    record = RunRecord(run_dir, pipeline="llm-finetune", run_id=run_id, params=params,
                       steps=["prepare-data", "train", ...])
    record.start_step("train")
    record.end_step("train", state="failed", error="data.jsonl:17: missing field 'response'")
    record.finish(status="FAILED", error="train: ...", exit_code=2)

`<run dir>/run.json`: {"pipeline", "run_id", "status" (RUNNING, SUCCEEDED, FAILED), "started",
"ended" (ISO 8601 UTC), "params", "error", "exit_code", "steps": [{"name", "state" (waiting,
running, done, failed, skipped), "started", "ended", "log" ("logs/<step>.log", relative to the
run directory), "error"}]}. It is rewritten whole (a new file renamed over the old) at each
change, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

RECORD = "run.json"
LOGS = "logs"
ENDED = ("done", "failed", "skipped")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def step_log(name: str) -> str:
    """A step's log file, relative to the run directory."""
    return f"{LOGS}/{name}.log"


class RunRecord:
    def __init__(
        self, run_dir: str, *, pipeline: str, run_id: str, params: dict, steps: list[str]
    ) -> None:
        self.path = os.path.join(run_dir, RECORD)
        self.data = {
            "pipeline": pipeline,
            "run_id": run_id,
            "status": "RUNNING",
            "started": now_iso(),
            "ended": None,
            "params": params,
            "error": "",
            "exit_code": None,
            "steps": [_waiting(name) for name in steps],
        }
        # Wall-clock seconds per step, for the terminal view (the record keeps ISO times).
        self.seconds: dict[str, tuple[float, float | None]] = {}
        self.save()

    def step(self, name: str) -> dict:
        """The step named `name`; one kfp.local ran but the spec did not list is added."""
        for step in self.data["steps"]:
            if step["name"] == name:
                return step
        self.data["steps"].append(_waiting(name))
        return self.data["steps"][-1]

    def start_step(self, name: str) -> None:
        step = self.step(name)
        step.update(state="running", started=now_iso(), log=step_log(name))
        self.seconds[name] = (time.monotonic(), None)
        self.save()

    def end_step(self, name: str, *, state: str, error: str = "") -> None:
        assert state in ENDED, state
        step = self.step(name)
        step.update(state=state, ended=now_iso(), error=error)
        if name in self.seconds:
            self.seconds[name] = (self.seconds[name][0], time.monotonic())
        self.save()

    def finish(self, *, status: str, error: str = "", exit_code: int = 0) -> None:
        """End the run; steps that never started are skipped."""
        for step in self.data["steps"]:
            if step["state"] in ("waiting", "running"):
                step["state"] = "skipped" if step["state"] == "waiting" else "failed"
        self.data.update(status=status, ended=now_iso(), error=error, exit_code=exit_code)
        self.save()

    def save(self) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)


def _waiting(name: str) -> dict:
    return {
        "name": name,
        "state": "waiting",
        "started": None,
        "ended": None,
        "log": step_log(name),
        "error": "",
    }
