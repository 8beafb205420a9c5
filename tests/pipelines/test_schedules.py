"""`liftoff schedule ...` against the loopback Vertex fake and Artifact Registry KFP repository:
the stored run request right for a run that repeats, every lifecycle call checked on the wire,
and the checks that send nothing.

.venv/bin/python -m pytest -q tests/pipelines/test_schedules.py
"""

import hashlib
import json
from datetime import UTC, datetime

import pytest
import yaml

from pipelines.cli import main
from pipelines.schedule_commands import LOCAL_REFUSAL
from pipelines.schedules import upcoming
from pipelines.templates import push_template
from tests.pipelines.golden import HERE as GOLDEN
from tests.support.compiled import tasks

PROJECT, REGION = "proj-1", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SERVICE_ACCOUNT = "liftoff-pipelines@proj-1.iam.gserviceaccount.com"
ROOT = "gs://proj-1-liftoff/pipelines"
SHA = "7c3f9e10a1b2c3d4e5f60a1b2c3d4e5f6a1b2c3d"
CRON = "TZ=Europe/Berlin 0 3 * * 1"
WHERE = ["--project", PROJECT, "--region", REGION]
RUNS_AS = ["--pipeline-root", ROOT, "--service-account", SERVICE_ACCOUNT]


@pytest.fixture(autouse=True)
def user(monkeypatch, tmp_path):
    monkeypatch.setenv("TZ", "America/New_York")  # the user's zone, not the schedule's
    monkeypatch.setenv("LIFTOFF_GIT_SHA", SHA)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def template(kfp_registry) -> str:
    """llm-finetune's golden template pushed and tagged rc1; its URI by tag."""
    host = kfp_registry.add_repository(PROJECT, "liftoff-pipelines", location=REGION)
    push_template(str(GOLDEN / "llm-finetune.yaml"), host=host, tags=["rc1"])
    kfp_registry.requests.clear()
    return f"{host}/llm-finetune@rc1"


@pytest.fixture
def model(vertex_fake) -> str:
    """The model a first run registered, which every retrain adds a version to."""
    return vertex_fake.add_model(PARENT, "llm-finetune")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys, template: str, *extra: str) -> tuple[int, str, str]:
    return cli(
        capsys, "schedule", "create", "--template", template, "--name", "weekly-sft",
        "--cron", CRON, *WHERE, *RUNS_AS, *extra,
    )  # fmt: skip


def test_create_stores_a_run_request_right_for_a_run_that_repeats(
    capsys, vertex_fake, template, model
):
    code, out, err = create(
        capsys, template, "--param", "data=gs://proj-1-liftoff/data/train.jsonl",
        "--param", "max_steps=200", "--max-runs", "52", "--allow-queueing",
        "--start", "2030-01-01T00:00+01:00", "--label", "team=ml",
    )  # fmt: skip

    assert (code, err) == (0, "")
    lookup, post = vertex_fake.requests
    assert (lookup.method, lookup.path) == ("GET", f"/v1/{PARENT}/models")
    assert lookup.query["filter"] == 'display_name="llm-finetune"'
    assert (post.method, post.path) == ("POST", f"/v1/{PARENT}/schedules")
    body = post.body
    assert {k: v for k, v in body.items() if k != "createPipelineJobRequest"} == {
        "displayName": "weekly-sft",
        "cron": CRON,
        "maxConcurrentRunCount": "1",  # int64 fields as JSON strings
        "maxRunCount": "52",
        "allowQueueing": True,
        "startTime": "2029-12-31T23:00:00Z",
    }
    request = body["createPipelineJobRequest"]
    assert request["parent"] == PARENT and "pipelineJobId" not in request
    job = request["pipelineJob"]
    pushed = (GOLDEN / "llm-finetune.yaml").read_bytes()
    assert job["templateUri"] == template.replace("@rc1", "/sha256:") + _hex(pushed)
    assert job["serviceAccount"] == SERVICE_ACCOUNT  # every step's identity too
    assert job["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    assert job["runtimeConfig"]["parameterValues"] == {
        "data": "gs://proj-1-liftoff/data/train.jsonl",
        "max_steps": 200,
        "parent_model": model,  # resolved by display name: each retrain a new version
    }
    assert job["labels"] == {
        "team": "ml",
        "liftoff-pipeline": "llm-finetune",
        "liftoff-schedule": "weekly-sft",
    }
    _assert_repeatable(job["pipelineSpec"])
    # Nothing names one run: the upload's run label is set by a step when each run starts.
    assert "liftoff_run" not in json.dumps({k: v for k, v in job.items() if k != "pipelineSpec"})
    components = json.dumps(job["pipelineSpec"]["components"])
    assert '"run-labels"' in components and "{{$.pipeline_job_name}}" in components
    lines = out.splitlines()
    assert lines[0] == f"created schedule weekly-sft: {PARENT}/schedules/7000"
    assert f"  runs: llm-finetune ({job['templateUri']})" in lines
    # The first Monday 03:00 in Berlin after the start, shown in the user's New York time.
    assert lines[-1] == (
        "  next runs: Sun 2030-01-06 21:00 EST, Sun 2030-01-13 21:00 EST, Sun 2030-01-20 21:00 EST"
    )


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_repeatable(spec: dict) -> None:
    """Caching off in every task, and training into the run's own directory."""
    every = list(tasks(spec))
    assert len(every) > 5
    assert all(task["cachingOptions"] == {"enableCache": False} for _, _, task in every)
    (train,) = [task for _, name, task in every if name == "train"]
    directory = train["inputs"]["parameters"]["base_output_directory"]["runtimeValue"]["constant"]
    assert directory == "{{$.pipeline_root}}/{{$.pipeline_job_name}}/train"
    # A retrain registers (and becomes the default version) only inside the gate's branch.
    root = spec["root"]["dag"]["tasks"]
    assert "gate" in json.dumps(root["condition-1"]["triggerPolicy"])
    assert [name for name in root if "upload" in name] == []
    assert {"model-upload", "model-upload-2"} <= {name for _, name, _ in every}


def test_create_from_a_pipeline_compiles_it_and_dry_run_sends_nothing(capsys, vertex_fake):
    code, out, err = cli(
        capsys, "schedule", "create", "llm-finetune", "--hardware", "a100x1", "--name", "nightly",
        "--cron", "0 2 * * *", "--dry-run", *WHERE, *RUNS_AS,
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert vertex_fake.requests == []
    printed = json.loads(out)
    assert printed["parent"] == PARENT
    job = printed["schedule"]["createPipelineJobRequest"]["pipelineJob"]
    assert "templateUri" not in job
    # Compiled here: the commit is a label of every run's model; no run's own name.
    assert job["runtimeConfig"]["parameterValues"] == {"model_labels": {"git_sha": SHA[:12]}}
    _assert_repeatable(job["pipelineSpec"])
    golden = yaml.safe_load((GOLDEN / "llm-finetune.yaml").read_text())
    assert job["pipelineSpec"]["deploymentSpec"] == golden["deploymentSpec"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--cron", "0 3 * *"], "--cron '0 3 * *': expected 5 fields"),
        (["--cron", "TZ=Berlin 0 3 * * 1"], "'Berlin' is not an IANA time zone"),
        (["--target", "local"], LOCAL_REFUSAL),
        (["--max-concurrent", "0"], "--max-concurrent 0: must be at least 1"),
        (["--start", "2030-01-02", "--end", "2030-01-01"], "is not after --start"),
        (["--start", "soon"], "--start 'soon': expected an ISO 8601 time"),
        (["--hardware", "a100x8"], "--hardware cannot go with a template"),
        (["--param", "max_steps=many"], "--param max_steps='many': expected an integer"),
        (["--param", "gate_metric=bleu"], "gate_metric: 'bleu' must be one of"),
    ],
)
def test_bad_input_is_one_line_and_sends_nothing(capsys, vertex_fake, template, extra, says):
    argv = ["schedule", "create", "--template", template, "--name", "s", "--cron", CRON]
    code, out, err = cli(capsys, *argv, *WHERE, *RUNS_AS, *extra)

    assert code == 2 and out == ""
    assert err.startswith("liftoff schedule: error: ") and says in err
    assert len(err.splitlines()) == 1
    assert vertex_fake.requests == []


def test_a_schedule_needs_its_identity_and_a_model_to_retrain(capsys, vertex_fake, template):
    argv = ["schedule", "create", "--template", template, "--name", "s", "--cron", CRON, *WHERE]
    code, _, err = cli(capsys, *argv, "--pipeline-root", ROOT)
    assert code == 2 and "--service-account is required for a schedule" in err

    code, _, err = cli(capsys, *argv, *RUNS_AS)
    assert code == 2
    assert err == (
        f"liftoff schedule: error: parent_model: no Vertex model is named 'llm-finetune' in "
        f"{PARENT}: a schedule retrains an existing model (run liftoff submit once), or pass "
        "--param parent_model=projects/P/locations/R/models/ID\n"
    )
    assert [r.method for r in vertex_fake.requests] == ["GET"]  # the lookup, no create


def test_a_template_that_trains_into_a_fixed_directory_is_refused(
    capsys, tmp_path, kfp_registry, vertex_fake, model
):
    text = (GOLDEN / "llm-finetune.yaml").read_text()
    fixed = text.replace("{{$.pipeline_root}}/{{$.pipeline_job_name}}/train", "gs://b/train")
    assert fixed != text
    path = tmp_path / "fixed.yaml"
    path.write_text(fixed)
    host = kfp_registry.add_repository(PROJECT, "old", location=REGION)
    push_template(str(path), host=host, tags=["old"])
    code, _, err = create(capsys, f"{host}/llm-finetune@old")

    assert code == 2
    assert "task 'train' writes to the fixed directory 'gs://b/train'" in err
    assert [r.method for r in vertex_fake.requests] == ["GET"]


def test_the_lifecycle_on_the_wire(capsys, vertex_fake, template, model):
    assert create(capsys, template)[0] == 0
    name = f"{PARENT}/schedules/7000"
    first = vertex_fake.schedules.fire(name, states=["PIPELINE_STATE_FAILED"])
    last = vertex_fake.schedules.fire(name, states=["PIPELINE_STATE_SUCCEEDED"])
    vertex_fake.requests.clear()

    code, out, _ = cli(capsys, "schedule", "list", *WHERE)
    assert code == 0 and out.splitlines()[1].split()[:4] == ["weekly-sft", "7000", "ACTIVE", "Sun"]

    vertex_fake.requests.clear()
    code, out, _ = cli(capsys, "schedule", "show", "weekly-sft", *WHERE)
    assert code == 0
    shown = out.splitlines()
    assert shown[0] == f"weekly-sft  ACTIVE  {name}"
    assert f"last run: {last.rsplit('/', 1)[1]} SUCCEEDED" in shown
    assert "started runs: 2" in shown
    assert shown[-1].startswith("next runs: Sun ") and shown[-1].count(", ") == 2
    finding = [r for r in vertex_fake.requests if r.path == f"/v1/{PARENT}/schedules"]
    assert finding[0].query["filter"] == 'display_name="weekly-sft"'

    vertex_fake.requests.clear()
    code, out, err = cli(
        capsys, "schedule", "update", "7000", "--cron", "TZ=Europe/Berlin 0 4 * * 1",
        "--max-runs", "10", *WHERE,
    )  # fmt: skip
    assert (code, err) == (0, "")
    (patch,) = [r for r in vertex_fake.requests if r.method == "PATCH"]
    assert patch.path == f"/v1/{name}"
    assert patch.query["updateMask"] == "cron,maxRunCount"
    # Only the masked fields (the name is in the path), maxRunCount an int64 string.
    assert patch.body == {"cron": "TZ=Europe/Berlin 0 4 * * 1", "maxRunCount": "10"}
    assert out.startswith("updated cron, maxRunCount of schedule weekly-sft\n")

    for argv, path, body in (
        (["pause", "weekly-sft"], f"/v1/{name}:pause", {}),
        (["resume", "weekly-sft", "--catch-up"], f"/v1/{name}:resume", {"catchUp": True}),
    ):
        vertex_fake.requests.clear()
        assert cli(capsys, "schedule", *argv, *WHERE)[0] == 0
        (sent,) = [r for r in vertex_fake.requests if r.method == "POST"]
        assert (sent.path, sent.body) == (path, body)
    assert vertex_fake.schedules.items[name]["catchUp"] is True

    code, _, err = cli(capsys, "schedule", "resume", "weekly-sft", *WHERE)  # not paused now
    assert code == 1 and "only PAUSED ones resume" in err and len(err.splitlines()) == 1

    vertex_fake.requests.clear()
    code, out, _ = cli(capsys, "schedule", "runs", "weekly-sft", "--json", *WHERE)
    (listing,) = [r for r in vertex_fake.requests if r.path.endswith("/pipelineJobs")]
    assert listing.query["filter"] == f'schedule_name="{name}"'
    assert {(r["run"], r["state"]) for r in json.loads(out)} == {
        (first.rsplit("/", 1)[1], "FAILED"),
        (last.rsplit("/", 1)[1], "SUCCEEDED"),
    }

    vertex_fake.requests.clear()
    code, out, _ = cli(capsys, "schedule", "delete", "weekly-sft", *WHERE)
    assert code == 0 and out == f"deleted {name} (the runs it started stay)\n"
    assert [r.method for r in vertex_fake.requests] == ["GET", "DELETE"]
    code, _, err = cli(capsys, "schedule", "show", "7000", *WHERE)
    assert code == 2 and err == f"liftoff schedule: error: schedule {name}: not found\n"


def test_schedule_refuses_the_local_target_with_one_line(capsys):
    code, out, err = cli(capsys, "schedule", "list", "--target", "local")
    assert (code, out) == (2, "")
    assert err == f"liftoff schedule: error: {LOCAL_REFUSAL}\n"


def test_upcoming_runs_respect_start_end_run_limit_and_state():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    daily = {"state": "ACTIVE", "cron": "0 6 * * *", "startedRunCount": "8"}
    assert [t.day for t in upcoming(daily, now=now)] == [1, 2, 3]
    assert [t.day for t in upcoming({**daily, "startTime": "2026-01-10T00:00:00Z"}, now=now)] == [
        10,
        11,
        12,
    ]
    assert [t.day for t in upcoming({**daily, "endTime": "2026-01-02T12:00:00Z"}, now=now)] == [
        1,
        2,
    ]
    assert [t.day for t in upcoming({**daily, "maxRunCount": "9"}, now=now)] == [1]
    assert upcoming({**daily, "state": "PAUSED"}, now=now) == []
