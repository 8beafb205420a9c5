"""The terminal view of a local run: one line per pipeline step (waiting, running, done, failed,
skipped, with its time), a progress bar with ETA and loss while a step trains, then the summary.

    view = make_view(sys.stdout, verbose=False)   # live on a terminal, plain lines otherwise
    view.start(pipeline="llm-finetune", run_id=run_id, steps=["prepare-data", "train", ...])
    view.step_started("train"); view.progress("train", Progress(120, 500, 1.0458))
    view.step_ended("train", state="done", error="")
    view.stop(states={"register-local": "skipped", ...})
    print("\n".join(summary_lines(result)))

On a terminal the steps redraw in place (rich); without one (a pipe, a file, CI) each change is
a line, and training a line per tenth of its steps. Colour only on a terminal and never with
NO_COLOR (rich honours it). `liftoff run -v` shows kfp.local's own output instead
(`NullView`); either way every line is in the run's logs (pipelines/step_logs.py).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from pipelines.run_view import duration
from trainers.common.progress import Progress

ICONS = {"waiting": "·", "running": "▸", "done": "✓", "failed": "✗", "skipped": "-"}
STYLES = {"waiting": "dim", "running": "yellow", "done": "green", "failed": "red", "skipped": "dim"}
PLAIN_TENTHS = 10  # plain mode: a progress line each time a tenth of the steps is done
BAR_WIDTH = (8, 30)  # the bar takes what the step line leaves of the terminal, within these
LINE_WITHOUT_BAR = 80  # the rest of a training step's line: name, state, time, step, loss, ETA


@dataclass
class StepView:
    name: str
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None
    progress: Progress | None = None
    first: tuple[float, int] | None = None  # (when, step) of the first progress line

    def seconds(self, now: float) -> float | None:
        return None if self.started is None else (self.ended or now) - self.started

    def eta(self, now: float) -> float | None:
        return eta_seconds(self.first, self.progress, now=now)


def eta_seconds(first: tuple[float, int] | None, progress: Progress | None, *, now: float):
    """Seconds left at the pace since the first progress line (which excludes the set-up)."""
    if first is None or progress is None or progress.step <= first[1]:
        return None
    pace = (now - first[0]) / (progress.step - first[1])
    return pace * max(0, progress.max_steps - progress.step)


class NullView:
    """`-v`: kfp.local's own output is echoed instead."""

    def start(self, *, pipeline: str, run_id: str, steps: list[str]) -> None: ...
    def step_started(self, name: str) -> None: ...
    def progress(self, name: str, progress: Progress) -> None: ...
    def step_ended(self, name: str, *, state: str, error: str) -> None: ...
    def stop(self, *, states: dict[str, str]) -> None: ...


class _Steps(NullView):
    """The steps' states, shared by both views."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.steps: dict[str, StepView] = {}
        self.lock = threading.Lock()

    def start(self, *, pipeline: str, run_id: str, steps: list[str]) -> None:
        self.title = f"{pipeline}  run {run_id}"
        self.steps = {name: StepView(name) for name in steps}

    def step(self, name: str) -> StepView:
        return self.steps.setdefault(name, StepView(name))

    def step_started(self, name: str) -> None:
        with self.lock:
            self.step(name).state, self.step(name).started = "running", time.monotonic()

    def progress(self, name: str, progress: Progress) -> None:
        with self.lock:
            step = self.step(name)
            step.progress = progress
            step.first = step.first or (time.monotonic(), progress.step)

    def step_ended(self, name: str, *, state: str, error: str) -> None:
        with self.lock:
            self.step(name).state, self.step(name).ended = state, time.monotonic()

    def stop(self, *, states: dict[str, str]) -> None:
        with self.lock:
            for name, state in states.items():
                self.step(name).state = state


class PlainView(_Steps):
    def start(self, **kwargs) -> None:
        super().start(**kwargs)
        self._print(self.title)

    def step_started(self, name: str) -> None:
        super().step_started(name)
        self._print(f"{name:<16} running")

    def progress(self, name: str, progress: Progress) -> None:
        before = self.step(name).progress
        super().progress(name, progress)
        tenth = progress.step * PLAIN_TENTHS // max(1, progress.max_steps)
        if before is None or tenth > before.step * PLAIN_TENTHS // max(1, before.max_steps):
            self._print(f"{name:<16} {_progress_text(self.step(name), time.monotonic())}")

    def step_ended(self, name: str, *, state: str, error: str) -> None:
        super().step_ended(name, state=state, error=error)
        took = duration(self.step(name).seconds(time.monotonic()))
        self._print(f"{name:<16} {state} {took}" + (f": {error}" if error else ""))

    def stop(self, *, states: dict[str, str]) -> None:
        super().stop(states=states)
        skipped = [name for name, state in states.items() if state == "skipped"]
        if skipped:
            self._print(f"{'skipped':<16} {', '.join(skipped)}")

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class LiveView(_Steps):
    """Redraws the steps in place on a terminal (rich's Live, refreshed 4 times a second)."""

    def start(self, **kwargs) -> None:
        from rich.console import Console
        from rich.live import Live

        super().start(**kwargs)
        self.console = Console(file=self.stream)
        self.live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=4,
            redirect_stdout=False,  # pipelines/step_logs.py has stdout and stderr
            redirect_stderr=False,
        )
        self.live.start()

    def stop(self, *, states: dict[str, str]) -> None:
        super().stop(states=states)
        self.live.stop()

    def _render(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_row(self.title, style="bold")
        now = time.monotonic()
        with self.lock:
            for step in self.steps.values():
                table.add_row(_live_line(step, now, width=self.console.width))
        return table


def _live_line(step: StepView, now: float, *, width: int):
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    line = Table.grid(padding=(0, 1))
    style = STYLES[step.state]
    cells = [
        Text(ICONS[step.state], style=style),
        Text(f"{step.name:<16}"),
        Text(f"{step.state:<8}", style=style),
        Text(f"{duration(step.seconds(now)) if step.started else '':>7}"),
    ]
    if step.progress is not None and step.state == "running":
        done, total = step.progress.step, step.progress.max_steps
        bar = min(max(width - LINE_WITHOUT_BAR, BAR_WIDTH[0]), BAR_WIDTH[1])
        cells += [ProgressBar(total=total, completed=done, width=bar)]
        cells += [Text(_progress_text(step, now))]
    line.add_row(*cells)
    return line


def _progress_text(step: StepView, now: float) -> str:
    progress = step.progress
    eta = step.eta(now)
    text = f"step {progress.step}/{progress.max_steps} loss {progress.loss:.4f}"
    return text + (f" ETA {duration(eta)}" if eta is not None else "")


def make_view(stream, *, verbose: bool):
    """The view for `stream`: none with -v, live on a terminal, else plain lines."""
    if verbose:
        return NullView()
    if stream.isatty() and os.environ.get("TERM") != "dumb":
        return LiveView(stream)
    return PlainView(stream)


def summary_lines(result) -> list[str]:
    """The end of a run (pipelines/local_run.py's RunResult): its outcome and cause, metrics,
    model, registration or why there is none, the deploy check, W&B runs by step, logs."""
    lines = [
        f"{result.pipeline} {result.status} in {duration(result.wall_s)} (run {result.run_id})"
    ]
    if result.error:
        lines.append(f"  error: {result.error}")
    if result.failed_step:
        lines.append(f"  log: {_short(os.path.join(result.logs, result.failed_step + '.log'))}")
    if result.metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items()))
        lines.append(f"  metrics: {shown}")
    if result.model_uri:
        lines.append(f"  model: {_short(result.model_uri)}")
    lines += _registration(result)
    if result.wandb_runs:
        lines.append("  W&B runs (offline; `wandb sync DIR` uploads one):")
        lines += [f"    {run['step'] or '?':<16} {_short(run['dir'])}" for run in result.wandb_runs]
    lines.append(f"  logs: {_short(result.logs)}/ (run.log: everything, <step>.log: each step)")
    return lines


def _registration(result) -> list[str]:
    if result.registry:
        aliases = ", ".join(result.registry["aliases"])
        lines = [f"  registered: {result.registry['ref']} ({aliases})"]
    elif result.status == "SUCCEEDED" and result.gate is not None:
        return [
            f"  not registered: {result.gate_metric} {result.gate:.4g} is below gate_threshold "
            f"{result.gate_threshold:g}, so register and deploy were skipped"
        ]
    else:
        return []
    if result.deploy_check:
        from serving.local import brief

        check = result.deploy_check
        pairs = zip(check["instances"], check["predictions"], strict=True)
        health = "healthy" if check.get("healthy", True) else "unhealthy"
        shown = "; ".join(f"{brief(i)} -> {p!r}" for i, p in pairs)
        lines.append(f"  deploy check: {health}; {shown}")
    return lines


def _short(path: str) -> str:
    """`path` relative to the working directory when it is under it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
