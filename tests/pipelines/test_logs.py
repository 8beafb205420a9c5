"""`liftoff logs`: Cloud Logging entries of a Vertex run and its tasks' CustomJobs (the
`entries.list` requests checked on the wire against the loopback Logging fake), following with a
timestamp cursor, and the step logs of a local run.

.venv/bin/python -m pytest -q tests/pipelines/test_logs.py
"""

import json

import pytest

from pipelines.cli import main
from pipelines.logs import follow_entries
from pipelines.vertex_api import Location
from pipelines.watch import get_job
from tests.support.pipeline_runs import PROJECT, REGION, RUN_ID, local_run, vertex_run

WHERE = ["--project", PROJECT, "--region", REGION]
RUNNING, SUCCEEDED = "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"
RUN_ENTRIES = (
    'resource.type="aiplatform.googleapis.com/PipelineJob" '
    f'AND resource.labels.pipeline_job_id="{RUN_ID}"'
)


@pytest.fixture(autouse=True)
def utc(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.chdir(tmp_path)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jobs_term(*ids: str) -> str:
    return " OR ".join(f'resource.labels.job_id="{i}"' for i in ids)


def test_logs_shows_the_run_and_its_tasks_entries_and_nothing_else(
    capsys, vertex_fake, logging_fake
):
    vertex_run(vertex_fake, states=[RUNNING])
    logging_fake.add("PipelineJob started", pipeline_job_id=RUN_ID)
    logging_fake.add("prepare_data: train 96 records", job_id="2001")
    logging_fake.add("another run's step", job_id="9999")
    logging_fake.add("train: python -m trainers.llm --preset debug", job_id="2002")
    logging_fake.add({"message": "step 20/500 loss 2.3100", "rank": "0"}, job_id="3003")
    logging_fake.add("another run", pipeline_job_id="other-run")
    code, out, err = cli(capsys, "logs", RUN_ID, *WHERE)

    assert (code, err) == (0, "")
    (request,) = logging_fake.requests
    assert request.body == {
        "resourceNames": [f"projects/{PROJECT}"],
        "filter": f'timestamp>="2026-01-05T03:00:00Z" AND (({RUN_ENTRIES}) OR '
        f'(resource.type="ml_job" AND ({jobs_term("2001", "2002", "3003")})))',
        "orderBy": "timestamp desc",
        "pageSize": 200,
    }
    assert [line.split(None, 4)[2:] for line in out.splitlines()] == [
        ["INFO", "pipeline", "PipelineJob started"],
        ["INFO", "prepare-data", "prepare_data: train 96 records"],
        ["INFO", "train", "train: python -m trainers.llm --preset debug"],
        ["INFO", "train", "step 20/500 loss 2.3100"],
    ]
    assert out.startswith("2026-01-05 03:00:00 INFO")


def test_one_tasks_errors(capsys, vertex_fake, logging_fake):
    vertex_run(vertex_fake, states=[RUNNING])
    logging_fake.add("prepare failed?", job_id="2001", severity="ERROR")
    logging_fake.add("step 20/500 loss 2.3100", job_id="3003")
    logging_fake.add({"message": "error: CUDA out of memory"}, job_id="3003", severity="ERROR")
    code, out, err = cli(
        capsys, "logs", RUN_ID, *WHERE, "--task", "train", "--severity", "error", "--limit", "5"
    )

    assert (code, err) == (0, "")
    (request,) = logging_fake.requests
    assert request.body["filter"] == (
        'timestamp>="2026-01-05T03:00:00Z" AND severity>=ERROR AND '
        f'((resource.type="ml_job" AND ({jobs_term("2002", "3003")})))'
    )
    assert request.body["pageSize"] == 5
    assert [line.split(None, 4)[2:] for line in out.splitlines()] == [
        ["ERROR", "train", "error: CUDA out of memory"]
    ]


def test_bad_task_or_severity_is_one_line(capsys, vertex_fake, logging_fake):
    vertex_run(vertex_fake, states=[RUNNING])
    code, _, err = cli(capsys, "logs", RUN_ID, *WHERE, "--task", "trian")
    assert code == 2
    assert err == (
        "liftoff logs: error: --task 'trian': the run has no such task "
        "(tasks: evaluate, prepare-data, train)\n"
    )
    code, _, err = cli(capsys, "logs", RUN_ID, *WHERE, "--severity", "LOUD")
    assert code == 2 and err.startswith("liftoff logs: error: --severity 'LOUD': one of DEBUG,")
    assert logging_fake.requests == []


def test_follow_moves_a_timestamp_cursor_until_the_run_ends(vertex_fake, logging_fake):
    name = vertex_run(vertex_fake, states=[RUNNING, RUNNING, SUCCEEDED])
    first = logging_fake.add("step 20/500", job_id="3003")
    arriving = [
        # Logged at the cursor's very timestamp, after the first read: shown once, not lost.
        lambda: logging_fake.add("same microsecond", job_id="3003", timestamp=_time(first)),
        lambda: logging_fake.add("model written to gs://b/model", job_id="3003"),
    ]
    where = Location(project=PROJECT, region=REGION, api_endpoint=vertex_fake.url)
    entries = follow_entries(
        lambda: get_job(name, where=where),
        where=where,
        interval_s=0,
        sleep=lambda _: arriving.pop(0)(),
    )

    assert [e.message for e in entries] == [
        "step 20/500",
        "same microsecond",
        "model written to gs://b/model",
    ]
    filters = [r.body["filter"] for r in logging_fake.requests]
    assert [r.body["orderBy"] for r in logging_fake.requests] == ["timestamp desc"] + [
        "timestamp asc"
    ] * 2
    assert filters[1].startswith(f'timestamp>="{first["timestamp"]}" AND ')
    assert filters[2].startswith(f'timestamp>="{first["timestamp"]}" AND ')  # same instant
    assert len([r for r in vertex_fake.requests if r.path == f"/v1/{name}"]) == 3


def _time(entry: dict):
    from datetime import datetime

    return datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))


def test_local_logs_are_the_step_logs(capsys, tmp_path):
    run_dir = local_run(
        tmp_path / ".liftoff",
        "llm-finetune-20260105-030000-9",
        status="SUCCEEDED",
        logs={"prepare_data": "96 records\n", "train": "step 1/2 loss 3.2\nstep 2/2 loss 3.1\n"},
    )
    code, out, err = cli(capsys, "logs", "llm-finetune-20260105-030000-9")
    assert (code, err) == (0, "")
    assert [line.split(None, 1) for line in out.splitlines()] == [
        ["prepare_data", "96 records"],
        ["train", "step 1/2 loss 3.2"],
        ["train", "step 2/2 loss 3.1"],
    ]
    code, out, _ = cli(capsys, "logs", "llm-finetune-20260105-030000-9", "--task", "train")
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = cli(capsys, "logs", "llm-finetune-20260105-030000-9", "--severity", "ERROR")
    assert code == 2 and "a local run's step logs are plain text" in err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "SUCCEEDED"


def test_local_follow_prints_lines_as_the_step_writes_them(tmp_path):
    from pipelines.local_records import local_log_lines

    workdir = tmp_path / ".liftoff"
    run_id = "llm-finetune-20260105-030000-10"
    run_dir = local_run(
        workdir,
        run_id,
        status="RUNNING",
        logs={"train": "step 1/3\nstep 2"},
        states={"train": "running"},
    )
    log, record = run_dir / "logs" / "train.log", run_dir / "run.json"

    def step_on(_):
        with log.open("a") as f:
            f.write("/3\nstep 3/3\n")  # completes the half-written line
        record.write_text(record.read_text().replace('"RUNNING"', '"SUCCEEDED"'))

    lines = local_log_lines(str(workdir), run_id, follow=True, interval_s=0, sleep=step_on)
    assert [line.split(None, 1)[1] for line in lines] == ["step 1/3", "step 2/3", "step 3/3"]
