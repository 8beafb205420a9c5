"""`liftoff status`, `cancel` and `runs` against the loopback Vertex fake (the GAPIC clients'
requests checked on the wire), and on local run records.

.venv/bin/python -m pytest -q tests/pipelines/test_watch.py
"""

import json

import pytest

from pipelines.cli import main
from tests.pipelines.contract import custom_job
from tests.support.pipeline_runs import (
    PARENT,
    PROJECT,
    REGION,
    RUN_ID,
    TRAINING_JOB,
    WEB_ACCESS,
    local_run,
    vertex_run,
)

WHERE = ["--project", PROJECT, "--region", REGION]
RUNNING, SUCCEEDED = "PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"


@pytest.fixture(autouse=True)
def berlin(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "Europe/Berlin")  # times are shown in the user's zone
    monkeypatch.chdir(tmp_path)  # no liftoff.toml, an empty .liftoff


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_each_task_and_the_training_custom_job(capsys, vertex_fake):
    name = vertex_run(vertex_fake, states=[RUNNING])
    code, out, err = cli(capsys, "status", RUN_ID, *WHERE)

    assert (code, err) == (0, "")
    assert [(r.method, r.path) for r in vertex_fake.requests] == [
        ("GET", f"/v1/{name}"),
        ("GET", f"/v1/{TRAINING_JOB}"),  # named by train's gcp_resources, not its launcher's
    ]
    lines = out.splitlines()
    assert lines[0].startswith(f"{RUN_ID}  RUNNING  llm-finetune  started Mon 2026-01-05 04:00 CET")
    assert lines[1] == (
        f"console: https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/"
        f"{RUN_ID}?project={PROJECT}"
    )
    rows = [line.split()[:4] for line in lines[3:] if not line.startswith(" ")]
    assert rows == [
        ["prepare-data", "SUCCEEDED", "04:00:40", "04:04:10"],
        ["train", "RUNNING", "04:04:15", "-"],
        ["evaluate", "PENDING", "-", "-"],
    ]
    assert "prepare-data" in lines[3] and lines[3].endswith("3m 30s")
    assert (
        "  CustomJob 3003: RUNNING on 2 nodes of a2-highgpu-8g with 8x NVIDIA_TESLA_A100, SPOT"
        in lines
    )
    for node, uri in WEB_ACCESS.items():
        assert f"  web access {node}: {uri}" in lines


@pytest.mark.parametrize(
    "given",
    [
        f"{PARENT}/pipelineJobs/{RUN_ID}",
        f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/{RUN_ID}"
        f"?project={PROJECT}",
    ],
)
def test_a_resource_name_or_console_url_brings_its_project_and_region(capsys, vertex_fake, given):
    name = vertex_run(vertex_fake, states=[RUNNING])
    code, out, err = cli(capsys, "status", given, "--json")  # no --project, --region

    assert (code, err) == (0, "")
    assert vertex_fake.requests[0].path == f"/v1/{name}"
    status = json.loads(out)
    assert (status["target"], status["run"], status["name"]) == ("vertex", RUN_ID, name)
    assert status["state"] == "RUNNING" and status["pipeline"] == "llm-finetune"
    train = next(t for t in status["tasks"] if t["name"] == "train")
    assert train["custom_job"] == {
        "name": TRAINING_JOB,
        "state": "RUNNING",
        "machine_type": "a2-highgpu-8g",
        "accelerator_type": "NVIDIA_TESLA_A100",
        "accelerator_count": 8,
        "replicas": 2,
        "scheduling": "SPOT",
        "web_access": WEB_ACCESS,
        "error": "",
    }


@pytest.mark.parametrize(("final", "exit_code"), [(SUCCEEDED, 0), ("PIPELINE_STATE_FAILED", 1)])
def test_watch_refreshes_until_the_run_ends_and_exits_with_its_outcome(
    capsys, vertex_fake, final, exit_code
):
    name = vertex_run(vertex_fake, states=[RUNNING, RUNNING, final])
    code, out, err = cli(capsys, "status", RUN_ID, *WHERE, "--watch", "--interval", "0", "--json")

    assert (code, err) == (exit_code, "")
    gets = [r for r in vertex_fake.requests if r.path == f"/v1/{name}"]
    assert len(gets) == 3
    # A line per change: the second RUNNING read changed nothing.
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["RUNNING", final[15:]]


def test_a_bad_run_is_one_line_and_sends_nothing(capsys, vertex_fake):
    code, out, err = cli(capsys, "status", "Not/A Run", *WHERE)
    assert code == 2 and out == ""
    assert err.startswith("liftoff status: error: run 'Not/A Run': expected a job id")
    assert vertex_fake.requests == []

    code, out, err = cli(capsys, "status", "no-such-run", *WHERE)
    assert code == 2
    assert err == f"liftoff status: error: run {PARENT}/pipelineJobs/no-such-run: not found\n"


def test_cancel_asks_vertex_and_says_where_the_run_is(capsys, vertex_fake):
    name = vertex_run(vertex_fake, states=[RUNNING])
    code, out, err = cli(capsys, "cancel", RUN_ID, *WHERE)

    assert (code, err) == (0, "")
    cancel = vertex_fake.requests[0]
    assert (cancel.method, cancel.path, cancel.body) == ("POST", f"/v1/{name}:cancel", {})
    assert out == f"cancelling {name} (now CANCELLED): its running tasks stop\n"

    code, out, err = cli(capsys, "cancel", RUN_ID, *WHERE)  # it has ended: Vertex refuses
    assert code == 1
    assert err.startswith(f"liftoff cancel: error: run {name}: Vertex AI: 400")
    assert "cannot be cancelled" in err and len(err.splitlines()) == 1


def test_runs_lists_the_newest_of_a_pipeline(capsys, vertex_fake):
    for index, pipeline in enumerate(["llm-finetune", "vlm-ddp", "llm-finetune", "llm-finetune"]):
        body = {
            "pipelineSpec": {"pipelineInfo": {"name": pipeline}},
            "createTime": f"2026-01-0{index + 1}T03:00:00Z",
            "startTime": f"2026-01-0{index + 1}T03:00:10Z",
            "endTime": f"2026-01-0{index + 1}T03:{10 + index}:10Z",
        }
        vertex_fake.add_job(PARENT, f"run-{index}", body, states=[SUCCEEDED])
    code, out, err = cli(capsys, "runs", "llm-finetune", "--limit", "2", *WHERE)

    assert (code, err) == (0, "")
    (listing,) = vertex_fake.requests
    assert (listing.method, listing.path) == ("GET", f"/v1/{PARENT}/pipelineJobs")
    assert listing.query["filter"] == 'pipeline_name="llm-finetune"'
    assert listing.query["orderBy"] == "create_time desc"
    assert listing.query["pageSize"] == "2"
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[-2:]) for r in rows] == [
        ("run-3", "llm-finetune", "SUCCEEDED", ["13m", "00s"]),
        ("run-2", "llm-finetune", "SUCCEEDED", ["12m", "00s"]),
    ]


def test_local_runs_status_and_listing_read_the_run_records(capsys, tmp_path):
    workdir = tmp_path / ".liftoff"
    local_run(workdir, "llm-finetune-20260104-030000-7", status="SUCCEEDED", logs={"train": ""})
    local_run(
        workdir,
        "llm-finetune-20260105-030000-8",
        status="FAILED",
        logs={"prepare_data": "reading data/bad.jsonl\n"},
        states={"prepare_data": "failed"},
        started="2026-01-05T03:00:00Z",
    )
    code, out, err = cli(capsys, "status", "llm-finetune-20260105-030000-8")  # found: local

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("llm-finetune-20260105-030000-8  FAILED  llm-finetune")
    assert lines[1] == "error: prepare_data: error: data/bad.jsonl:17: missing field 'response'"
    assert lines[3].split()[:4] == ["prepare_data", "failed", "04:00:00", "04:00:30"]
    assert lines[5] == "  log: .liftoff/runs/llm-finetune-20260105-030000-8/logs/prepare_data.log"

    code, out, err = cli(capsys, "runs", "--json")  # no Vertex project set anywhere: local
    assert (code, err) == (0, "")
    assert [(r["run"], r["state"]) for r in json.loads(out)] == [
        ("llm-finetune-20260105-030000-8", "FAILED"),
        ("llm-finetune-20260104-030000-7", "SUCCEEDED"),
    ]

    code, out, err = cli(capsys, "cancel", "llm-finetune-20260105-030000-8")
    assert code == 2 and "runs on this machine: stop it with Ctrl-C" in err


def test_submit_enable_web_access_opens_shells_into_the_training_job(capsys, vertex_fake):
    code, out, err = cli(
        capsys, "submit", "llm-finetune", "--enable-web-access", "--dry-run", *WHERE,
        "--pipeline-root", "gs://b/root",
    )  # fmt: skip
    assert (code, err) == (0, "") and vertex_fake.requests == []
    spec = json.loads(out)["pipelineJob"]["pipelineSpec"]
    assert custom_job(spec, "train").job_spec.enable_web_access is True
