"""How a local run shows itself and keeps its output: tiny real pipelines run by kfp.local (its
own log lines and colours, its executor's output) through pipelines/step_logs.py, the run record
`liftoff status` reads, the plain terminal view, the summary.

    .venv/bin/python -m pytest -q tests/pipelines/test_run_view.py
"""

import io
import json

import pytest
from kfp import dsl

from pipelines.catalog import get_pipeline
from pipelines.local_records import local_status
from pipelines.local_run import RunResult, execute, step_names
from pipelines.progress import PlainView, eta_seconds, summary_lines
from pipelines.run_record import RunRecord
from pipelines.step_logs import ANSI, StepLogs
from pipelines.targets import LocalTarget
from trainers.common.progress import Progress, parse_progress, progress_line

# No `from __future__ import annotations` here: KFP would read every type as an artifact's.
IMAGE = "python:3.11"  # kfp.local runs the components in this interpreter all the same
WANDB_DIR = "/tmp/wandb/offline-run-20260105_030000-abc"
TALK = [
    progress_line(step=5, max_steps=10, loss=2.5, lr=1e-3, rates={"tokens": 100.0}),
    f"wandb: Run data is saved locally in {WANDB_DIR}",
    progress_line(step=10, max_steps=10, loss=1.25, lr=1e-3, rates={"tokens": 100.0}),
]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def talk(lines: list) -> float:
    for line in lines:
        print(line)
    return 0.5


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate(value: float) -> bool:
    return value > 1.0


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def after() -> str:
    return "never"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fail(how: str):
    import sys

    if how == "error line":  # the trainers' way: one line, then exit (trainers/common/logs.py)
        print("error: data.jsonl:2: missing field 'response'", file=sys.stderr)
        sys.exit(2)
    if how == "bad data":  # a component's: the exception's traceback
        from trainers.common.records import DataError

        raise DataError("data.jsonl:3: not JSON")
    raise RuntimeError("the disk is full")


@dsl.pipeline(name="passing")
def passing():
    said = talk(lines=TALK)
    verdict = gate(value=said.output)
    with dsl.If(verdict.output == True):  # noqa: E712 - a KFP condition
        after()


@dsl.pipeline(name="failing")
def failing(how: str):
    fail(how=how).after(talk(lines=["warming up"]))


class Recorded:
    """A view that keeps what it is told, and what each step's log file held when it ended."""

    def __init__(self, logs_dir) -> None:
        self.events: list[tuple] = []
        self.logs_dir, self.written = logs_dir, {}

    def step_started(self, name):
        self.events.append(("started", name))

    def progress(self, name, progress):
        self.events.append(("progress", name, progress))

    def step_ended(self, name, *, state, error):
        self.events.append(("ended", name, state, error))
        self.written[name] = (self.logs_dir / f"{name}.log").read_text()


def run(pipeline, tmp_path, **values):
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    record = RunRecord(
        str(run_dir),
        pipeline="p",
        run_id="r1",
        params=values,
        steps=step_names(pipeline.pipeline_spec),
    )
    view = Recorded(run_dir / "logs")
    logs = StepLogs(str(run_dir), record=record, view=view)
    task, failure = execute(pipeline, values, pipeline_root=str(tmp_path / "root"), logs=logs)
    record.finish(
        status="FAILED" if failure else "SUCCEEDED", exit_code=failure.exit_code if failure else 0
    )
    logs.close()
    return run_dir, record, view, logs, failure


@pytest.fixture(scope="module")
def passed(tmp_path_factory):
    return run(passing, tmp_path_factory.mktemp("passing"))


def test_each_step_has_its_own_plain_log_and_run_log_has_everything(passed):
    run_dir, _, _, _, failure = passed
    assert failure is None
    logs = run_dir / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["gate.log", "run.log", "talk.log"]
    talk_log = (logs / "talk.log").read_text()
    assert "Got executor_input" in talk_log  # the KFP executor's own output is kept
    assert talk_log.splitlines().count(TALK[0]) == 1  # unindented, whole
    assert "gate" not in talk_log.split("Task 'talk' finished")[0]
    everything = (logs / "run.log").read_text()
    assert "Executing task 'talk'" in everything and "Executing task 'gate'" in everything
    for path in logs.iterdir():
        text = path.read_text()
        assert not ANSI.search(text) and "\x1b" not in text, path  # kfp.local colours stripped


def test_the_view_follows_steps_and_training_progress(passed):
    _, _, view, logs, _ = passed
    assert view.events == [
        ("started", "talk"),
        ("progress", "talk", Progress(step=5, max_steps=10, loss=2.5)),
        ("progress", "talk", Progress(step=10, max_steps=10, loss=1.25)),
        ("ended", "talk", "done", ""),
        ("started", "gate"),
        ("ended", "gate", "done", ""),
    ]
    assert logs.wandb_steps == {WANDB_DIR: "talk"}
    assert TALK[-1] in view.written["talk"]  # on disk as it ran: `liftoff logs --follow` sees it


def test_the_record_is_what_liftoff_status_reads(passed, tmp_path):
    run_dir, record, _, _, _ = passed
    data = json.loads((run_dir / "run.json").read_text())
    assert set(data) == {
        *("pipeline", "run_id", "status", "started", "ended", "params", "error", "exit_code"),
        "steps",
    }
    assert [(s["name"], s["state"]) for s in data["steps"]] == [
        ("talk", "done"),
        ("gate", "done"),
        ("after", "skipped"),  # the condition was false: it never ran
    ]
    assert all(s["log"] == f"logs/{s['name']}.log" for s in data["steps"])
    status = local_status(str(run_dir.parent.parent), "r1")
    assert status["state"] == "SUCCEEDED" and status["tasks"][0]["log"].endswith("logs/talk.log")


@pytest.mark.parametrize(
    ("how", "cause", "exit_code"),
    [
        ("error line", "data.jsonl:2: missing field 'response'", 2),
        ("bad data", "data.jsonl:3: not JSON", 2),
        ("failure", "the disk is full", 1),
    ],
)
def test_a_failed_step_gives_its_own_cause_and_exit_status(tmp_path, how, cause, exit_code):
    run_dir, record, view, _, failure = run(failing, tmp_path, how=how)
    assert (failure.step, failure.cause, failure.exit_code) == ("fail", cause, exit_code)
    assert view.events[-1] == ("ended", "fail", "failed", cause)
    steps = {s["name"]: s for s in json.loads((run_dir / "run.json").read_text())["steps"]}
    assert steps["fail"]["state"] == "failed" and steps["fail"]["error"] == cause
    assert "Traceback" in (run_dir / "logs" / "run.log").read_text()  # liftoff's own, kept


def test_steps_are_listed_in_the_order_they_run():
    target = LocalTarget(run_dir="/tmp/r", registry_dir="/tmp/registry")
    for name in ("llm-finetune", "vlm-ddp"):
        spec = get_pipeline(name).build(target).pipeline_spec
        assert step_names(spec) == [
            *("prepare-data", "train", "evaluate", "gate", "register-local", "deploy-local")
        ]


def test_progress_lines_read_back_plain_or_as_vertex_json():
    line = progress_line(step=120, max_steps=500, loss=1.0458, lr=2.72e-3, rates={"tokens": 436.8})
    assert line == "step 120/500 loss 1.0458 lr 2.72e-03 tokens/s 436.8"
    assert parse_progress(line) == Progress(120, 500, 1.0458)
    entry = json.dumps({"severity": "INFO", "message": line})
    assert parse_progress(entry) == Progress(120, 500, 1.0458)
    assert parse_progress("step 100 eval loss 1.07 perplexity 2.92") is None


def test_eta_is_the_pace_since_the_first_progress_line():
    assert eta_seconds((100.0, 20), Progress(120, 500, 1.0), now=110.0) == pytest.approx(38.0)
    assert eta_seconds((100.0, 20), Progress(20, 500, 1.0), now=110.0) is None  # no pace yet
    assert eta_seconds(None, None, now=1.0) is None


def test_plain_view_prints_a_line_per_change_and_training_by_tenths():
    out = io.StringIO()
    view = PlainView(out)
    view.start(pipeline="p", run_id="r1", steps=["prepare", "train", "deploy"])
    view.step_started("train")
    for step in range(20, 501, 20):
        view.progress("train", Progress(step, 500, 1.0))
    view.step_ended("train", state="done", error="")
    view.stop(states={"prepare": "done", "train": "done", "deploy": "skipped"})
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if "step " in line]
    shown = [int(line.split()[2].split("/")[0]) for line in progress]
    assert shown == [20, 60, 100, 160, 200, 260, 300, 360, 400, 460, 500]  # the first, then 10ths
    assert lines[0] == "p  run r1" and lines[-1].split() == ["skipped", "deploy"]
    assert "\x1b" not in out.getvalue()


def test_summary_says_why_nothing_was_registered_and_where_everything_is(tmp_path):
    result = RunResult(
        pipeline="llm-finetune",
        run_id="r1",
        status="SUCCEEDED",
        metrics={"exact_match": 0.07},
        gate=0.07,
        gate_metric="exact_match",
        gate_threshold=0.1,
        wandb_runs=[{"step": "train", "dir": "/w/offline-run-1"}],
        logs=str(tmp_path / "logs"),
        wall_s=75,
    )
    lines = summary_lines(result)
    assert lines[0] == "llm-finetune SUCCEEDED in 1m 15s (run r1)"
    assert "  not registered: exact_match 0.07 is below gate_threshold 0.1" in "\n".join(lines)
    assert any(line.split() == ["train", "/w/offline-run-1"] for line in lines)
    assert lines[-1].startswith(f"  logs: {tmp_path / 'logs'}/")

    failed = RunResult(
        pipeline="llm-finetune",
        run_id="r2",
        status="FAILED",
        error="prepare-data: data.jsonl:2: missing field 'response'",
        exit_code=2,
        failed_step="prepare-data",
        logs="/w/logs",
    )
    lines = summary_lines(failed)
    assert lines[1:3] == [
        "  error: prepare-data: data.jsonl:2: missing field 'response'",
        "  log: /w/logs/prepare-data.log",
    ]
    assert not any("registered" in line for line in lines)


def test_ctrl_c_is_recorded_and_exits_130(tmp_path):
    def interrupted():
        print("16:27:10.108 - INFO - Executing task 'train'")
        raise KeyboardInterrupt

    record = RunRecord(str(tmp_path), pipeline="p", run_id="r1", params={}, steps=["train"])
    logs = StepLogs(str(tmp_path), record=record, view=Recorded(tmp_path / "logs"))
    task, failure = execute(interrupted, {}, pipeline_root=str(tmp_path / "root"), logs=logs)
    assert task is None and (failure.cause, failure.exit_code) == ("interrupted (Ctrl-C)", 130)
    record.finish(status="FAILED", error=failure.cause, exit_code=failure.exit_code)
    assert record.data["steps"][0]["state"] == "failed"  # it was running
