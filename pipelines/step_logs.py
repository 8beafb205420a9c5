"""Where a local run's output goes. kfp.local prints its own log lines and every task's output
(the KFP executor, W&B, the trainer) to stdout, one task after another; while a run runs,
`StepLogs` is that stdout (and stderr).

    logs = StepLogs(run_dir, record=record, view=view, echo=None)   # echo: a stream for -v
    with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
        pipeline_func(**params)
    logs.close()
    logs.failure()        # the failed step's one-line cause: Failure(step, cause, user_error)

Each line goes, colour codes stripped, to `<run dir>/logs/run.log` (everything, as `-v` shows
it) and to the log of the step it belongs to, `<run dir>/logs/<step>.log`. On the way it tells
the run record and the terminal view what happened: a step started or ended, a training
progress line (trainers/common/progress.py), a step's own `error:` line or the last line of
its traceback, a W&B run's directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass

from pipelines.run_record import LOGS, RunRecord
from trainers.common.progress import parse_progress

# Colour and cursor codes (CSI sequences); kfp.local colours task names and statuses.
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# kfp.local's own lines: "16:27:10.108 - INFO - Executing task 'prepare-data'".
_KFP = re.compile(r"^\d\d:\d\d:\d\d\.\d+ - [A-Z]+ - (?P<message>.*)$")
_STARTED = re.compile(r"Executing task '(?P<task>[^']+)'")
_ENDED = re.compile(r"Task '(?P<task>[^']+)' finished with status (?P<status>[A-Z]+)")
_WANDB_DIR = re.compile(r"wandb: Run data is saved locally in (?P<dir>\S+)")
_EXCEPTION = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*(?:Error|Exception|Failed))(?::\s*(?P<msg>.*))?$")
# Exceptions that mean bad input (config, data, parameters): liftoff run exits 2 for them.
USER_ERRORS = ("ConfigError", "DataError", "ValueError")
ERROR_PREFIX = "error: "  # the one-line errors of trainers/common/logs.py
INDENT = "    "  # kfp.local indents a task's own output by four spaces


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


BAD_INPUT, FAILED = 2, 1  # liftoff's exit statuses


@dataclass
class Failure:
    step: str
    cause: str  # one line, plain text
    exit_code: int  # BAD_INPUT (config, data, parameters) or FAILED


class StepLogs(io.TextIOBase):
    def __init__(self, run_dir: str, *, record: RunRecord, view, echo=None, color=False) -> None:
        """`view`: pipelines/progress.py's; `echo`: a stream that also gets every line (with
        kfp.local's colours when `color`)."""
        self.directory = os.path.join(run_dir, LOGS)
        os.makedirs(self.directory, exist_ok=True)
        self.record, self.view = record, view
        self.echo, self.color = echo, color
        self.current = ""  # the step whose lines these are
        self._open = contextlib.ExitStack()  # the log files, closed by close()
        self.files: dict[str, io.TextIOBase] = {}
        self.run_log = self._append(os.path.join(self.directory, "run.log"))
        self.own_errors: dict[str, Failure] = {}  # a step's own `error:` line, the first one
        self.tracebacks: dict[str, Failure] = {}  # the last line of its last traceback
        self.in_traceback: set[str] = set()
        self.wandb_steps: dict[str, str] = {}  # W&B run directory -> the step that made it
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        if self._open is None:
            return
        self.run_log.flush()
        for f in self.files.values():
            f.flush()

    def close(self) -> None:
        if self._open is not None:
            if self._partial:
                self._line(self._partial)
                self._partial = ""
            self._open.close()
            self._open = None
        super().close()

    def note(self, text: str) -> None:
        """Write `text` (liftoff's own, e.g. a traceback) to run.log alone."""
        self.run_log.write(strip_ansi(text).rstrip("\n") + "\n")

    def failure(self, step: str) -> Failure:
        """What made `step` fail: its `error:` line, else its traceback's last line."""
        found = self.own_errors.get(step) or self.tracebacks.get(step)
        return found or Failure(step, f"failed; see {self.log_path(step)}", FAILED)

    def log_path(self, step: str) -> str:
        return os.path.join(self.directory, f"{step}.log")

    def _line(self, raw: str) -> None:
        raw = raw.rsplit("\r", 1)[-1] if raw.strip("\r") else raw
        plain = strip_ansi(raw)
        if self.echo is not None:
            self.echo.write((raw if self.color else plain) + "\n")
            self.echo.flush()
        kfp = _KFP.match(plain)
        message = kfp["message"] if kfp else ""
        started = _STARTED.match(message)
        if started:
            self.current = started["task"]
            self.record.start_step(self.current)
            self.view.step_started(self.current)
        self.run_log.write(plain + "\n")
        if self.current:
            text = plain.removeprefix(INDENT)
            self._step_file(self.current).write(text + "\n")
            self._inspect(self.current, text)
        ended = _ENDED.match(message)
        if ended:
            self._end(ended["task"], ok=ended["status"] == "SUCCESS")

    def _step_file(self, step: str):
        if step not in self.files:
            self.files[step] = self._append(self.log_path(step))
        return self.files[step]

    def _append(self, path: str):
        # Open for the whole run, line-buffered: `liftoff logs --follow` reads them as they grow.
        return self._open.enter_context(open(path, "a", buffering=1))  # noqa: SIM115

    def _inspect(self, step: str, text: str) -> None:
        progress = parse_progress(text)
        if progress is not None:
            self.view.progress(step, progress)
        elif text.startswith(ERROR_PREFIX):
            self.own_errors.setdefault(step, Failure(step, text[len(ERROR_PREFIX) :], BAD_INPUT))
        elif text.startswith("Traceback (most recent call last):"):
            self.in_traceback.add(step)
        elif step in self.in_traceback and not text.startswith(" "):
            self._traceback_end(step, text)
        wandb_dir = _WANDB_DIR.match(text)
        if wandb_dir:
            self.wandb_steps[wandb_dir["dir"]] = step

    def _traceback_end(self, step: str, text: str) -> None:
        """A traceback's last line names the exception; the chained ones before it do not end
        it, so the last such line wins."""
        match = _EXCEPTION.match(text)
        if not match:
            return
        name = match["cls"].rsplit(".", 1)[-1]
        cause = match["msg"] or name
        self.tracebacks[step] = Failure(step, cause, BAD_INPUT if name in USER_ERRORS else FAILED)

    def _end(self, step: str, *, ok: bool) -> None:
        self.in_traceback.discard(step)
        error = "" if ok else self.failure(step).cause
        state = "done" if ok else "failed"
        self.record.end_step(step, state=state, error=error)
        self.view.step_ended(step, state=state, error=error)
