"""The `liftoff` command line: help with examples that parse, the listings, one-line usage errors
that write and send nothing, compile, and submit against the loopback Vertex fake and the GCS
emulator. Library-level submit behaviour is tested in test_submit.py; this checks the wiring.

.venv/bin/python -m pytest -q tests/pipelines/test_cli.py
"""

import json
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main, parser
from tests.pipelines.golden import IMAGES
from tests.support.imports import modules_after, within
from tests.support.vertex_fake import _Error as VertexError

COMMANDS = ("pipelines", "run", "compile", "submit", "serve", "models", "hardware")
COMMANDS += ("templates", "schedule", "status", "logs", "cancel", "runs")
HEAVY = (
    "kfp",
    "torch",
    "transformers",
    "google.cloud.aiplatform",
    "google_cloud_pipeline_components",
)
PROJECT, REGION = "p", "europe-west4"
SERVICE_ACCOUNT = "sa@p.iam.gserviceaccount.com"
GIT_SHA = "0123456789abcdef0123"
SETTINGS_ENV = ("PROJECT", "REGION", "PIPELINE_ROOT", "SERVICE_ACCOUNT", "API_ENDPOINT")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No LIFTOFF_* settings or liftoff.toml from outside; a known commit for model labels."""
    for name in SETTINGS_ENV:  # vertex_fake, set up after this, sets LIFTOFF_API_ENDPOINT again
        monkeypatch.delenv(f"LIFTOFF_{name}", raising=False)
    monkeypatch.setenv("LIFTOFF_GIT_SHA", GIT_SHA)
    monkeypatch.chdir(tmp_path)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fresh_root() -> str:
    """A pipeline root in a bucket that does not exist yet, so submit() creates it in the emulator
    instead of looking up the project number of an existing one."""
    return f"gs://lf-{uuid.uuid4().hex[:16]}/root"


def destination(root: str = "gs://b/root") -> list[str]:
    return ["--project", PROJECT, "--region", REGION, "--pipeline-root", root]


def creates(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/pipelineJobs")]


def assert_one_line_error(err: str, command: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"liftoff {command}: error: "), err
    assert "Traceback" not in err


# --- help ---------------------------------------------------------------------------------


def _examples(help_text: str) -> list[str]:
    """The `liftoff ...` lines of a help text, with backslash continuations joined."""
    lines, found = help_text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip().startswith("liftoff ") and not line.strip().startswith("liftoff:"):
            example = line.strip()
            while example.endswith("\\"):
                i += 1
                example = example[:-1] + " " + lines[i].strip()
            found.append(example.split("  #")[0])  # the top-level help comments its examples
    return found


def test_top_level_help_lists_every_command_with_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    examples = _examples(out)
    assert len(examples) >= 2
    for example in examples:
        assert shlex.split(example)[1] in COMMANDS, example
        parser().parse_args(shlex.split(example)[1:])  # the examples are valid command lines


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_has_an_example_that_parses(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    examples = _examples(capsys.readouterr().out)
    assert examples and all(e.startswith(f"liftoff {command}") for e in examples), examples
    for example in examples:
        assert parser().parse_args(shlex.split(example)[1:]).command == command


def test_help_loads_no_heavy_library():
    # A fresh interpreter: this one has long since imported kfp and friends.
    loaded = modules_after(
        f"""
from pipelines import cli
cli.parser()
for argv in (["--help"], *([c, "--help"] for c in {COMMANDS!r})):
    try:
        cli.main(argv)
    except SystemExit as e:
        assert e.code == 0, (argv, e.code)
"""
    )
    assert "argparse" in loaded and "pipelines.cli" in loaded  # the check can see imports
    assert within(loaded, HEAVY) == [], "--help imported heavy libraries"


# --- listings -----------------------------------------------------------------------------


def test_pipelines_lists_llm_finetune_with_a_one_line_description(capsys):
    code, out, err = cli(capsys, "pipelines")

    assert (code, err) == (0, "")
    (row,) = [line for line in out.splitlines() if line.split()[0] == "llm-finetune"]
    description = row.split(None, 1)[1]
    assert "fine-tuning" in description


def test_hardware_lists_the_profiles_with_their_machines(capsys):
    code, out, err = cli(capsys, "hardware")

    assert (code, err) == (0, "")
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
    assert rows["cpu"][:2] == ["n1-standard-8", "-"]
    assert rows["l4x1"][:3] == ["g2-standard-8", "1x", "NVIDIA_L4"]
    assert rows["a100x1"][:3] == ["a2-highgpu-1g", "1x", "NVIDIA_TESLA_A100"]
    assert rows["a100x8"][:3] == ["a2-highgpu-8g", "8x", "NVIDIA_TESLA_A100"]
    assert rows["a100-80x8"][:3] == ["a2-ultragpu-8g", "8x", "NVIDIA_A100_80GB"]
    assert rows["h100x8"][:3] == ["a3-highgpu-8g", "8x", "NVIDIA_H100_80GB"]
    assert rows["h200x8"][:3] == ["a3-ultragpu-8g", "8x", "NVIDIA_H200_141GB"]
    assert rows["b200x8"][:3] == ["a4-highgpu-8g", "8x", "NVIDIA_B200"]


# --- usage errors -------------------------------------------------------------------------

ROOT = "gs://lf-never-created/root"  # the commands below fail before any bucket is touched
USAGE_ERRORS = [
    (["compile", "nosuch", "-o", "x.yaml"], "unknown pipeline 'nosuch'"),
    (["compile", "llm-finetune", "--hardware", "tpu9", "-o", "x.yaml"], "unknown profile 'tpu9'"),
    (["compile", "llm-finetune", "--serving-hardware", "tpu9"], "unknown profile 'tpu9'"),
    (["compile", "llm-finetune", "--nodes", "0", "-o", "x.yaml"], "--nodes: 0 must be >= 1"),
    (["run", "nosuch"], "unknown pipeline 'nosuch'"),
    (["run", "llm-finetune", "--param", "max_steps=abc"], "max_steps='abc'"),
    (["submit", "nosuch", *destination(ROOT)], "unknown pipeline 'nosuch'"),
    (["submit", "llm-finetune", *destination(ROOT), "--hardware", "tpu9"], "unknown profile"),
    (["submit", "llm-finetune", *destination(ROOT), "--nodes", "0"], "--nodes: 0"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "nosuch=1"], "--param nosuch:"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "max_steps=abc"], "max_steps="),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "lora=maybe"], "lora='maybe'"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "overrides={}"], "JSON list"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "max_steps"], "NAME=VALUE"),
    (["submit", "llm-finetune", *destination(ROOT), "--label", "team"], "KEY=VALUE"),
    (["submit", "llm-finetune", *destination(ROOT), "--label", "Team=ml"], "'Team'"),
    (["submit", "llm-finetune", "--region", REGION, "--pipeline-root", ROOT], "--project is"),
    (["submit", "llm-finetune", *destination("/tmp/root")], "gs://BUCKET/PATH"),
    (["submit", "llm-finetune", *destination(ROOT), "--region", "Europe West"], "--region"),
    # What the pipeline would only find out after preparing data and training on GPUs.
    (["run", "llm-finetune", "--preset", "nosuch"], "--preset 'nosuch' is unknown"),
    (["run", "llm-finetune", "--set", "optim.nolr=1"], "no config field 'optim.nolr'"),
    (["run", "llm-finetune", "--set", "optim.lr=fast"], "optim.lr='fast' is invalid"),
    (["run", "llm-finetune", "--param", "gate_metric=bleu"], "gate_metric: 'bleu'"),
    (["run", "llm-finetune", "--param", 'version_aliases=["Prod"]'], "version_aliases: 'Prod'"),
    (["run", "llm-finetune", "--param", 'model_labels={"Team": "ml"}'], "key 'Team'"),
    (["run", "llm-finetune", "--param", "data=gone.jsonl"], "'gone.jsonl': no such file"),
    (["run", "llm-finetune", "--param", "on_bad_record=ignore"], "on_bad_record='ignore'"),
    (["compile", "vlm-ddp", "--param", "preset=qwen2.5-0.5b"], "--preset 'qwen2.5-0.5b'"),
    (["compile", "llm-finetune", "--set", "optim.lr"], "expected section.field=value"),
    (["compile", "llm-finetune", "--param", "gate_metric=vqa_exact_match"], "exact_match, neg"),
    (["compile", "llm-finetune", "--param", "hf_secret=hf-token"], "hf_secret: not a Secret"),
    (["compile", "llm-finetune", "--hardware", "cpu", "--flex-start"], "cannot use FLEX_START"),
    (["compile", "llm-finetune", "--flex-start", "--timeout", "8d"], "over FLEX_START's 7 days"),
    (["compile", "llm-finetune", "--timeout", "soon"], "--timeout: 'soon'"),
    (["submit", "llm-finetune", *destination(ROOT), "--set", "train.nosteps=1"], "train.nosteps"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "model_name="], "model_name: ''"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "data=data.jsonl"], "gs:// paths"),
    (["submit", "llm-finetune", *destination(ROOT), "--param", "parent_model=m1"], "models/ID"),
    (
        ["submit", "llm-finetune", *destination(ROOT), "--param", 'model_labels={"a": "B"}'],
        "a='B' has an invalid value",
    ),
]


@pytest.mark.parametrize(
    ("argv", "named"), USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS]
)
def test_usage_errors_are_one_line_exit_2_and_do_nothing(
    capsys, tmp_path, vertex_fake, gcs_emulator, argv, named
):
    code, out, err = cli(capsys, *argv)

    assert code == 2
    assert_one_line_error(err, argv[0])
    assert named in err
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # no compiled file, no .liftoff workdir
    assert vertex_fake.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["compile"],
        ["compile", "llm-finetune", "--spot", "--flex-start"],
        ["submit", "llm-finetune", "--spot", "--flex-start", "--dry-run"],
        ["compile", "llm-finetune", "--nodes", "two"],
    ],
)
def test_argparse_usage_errors_exit_2(capsys, tmp_path, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_a_usage_error_is_exit_2_and_one_line_across_the_process_boundary(tmp_path):
    for argv in (
        [sys.executable, "-m", "pipelines.cli", "compile", "llm-finetune", "--hardware", "tpu9"],
    ):
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)

        assert done.returncode == 2, done.stderr
        assert_one_line_error(done.stderr, argv[-4])
        assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


# --- compile ------------------------------------------------------------------------------

SCHEDULING = {"default": [], "spot": ["--spot"], "flex": ["--flex-start"]}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compiled")
    # The same images the (function-scoped) LIFTOFF_*_IMAGE of conftest.py name.
    images = ["--trainer-image", IMAGES["trainer"], "--serving-image", IMAGES["serving-gpu"]]
    paths = {}
    for name, flags in SCHEDULING.items():
        paths[name] = out / f"{name}.yaml"
        assert main(["compile", "llm-finetune", *flags, *images, "-o", str(paths[name])]) == 0
    return paths


def _strategy(path: Path) -> str:
    spec = yaml.safe_load(path.read_text())
    return spec["components"]["comp-train"]["inputDefinitions"]["parameters"]["strategy"][
        "defaultValue"
    ]


def test_compile_is_deterministic_and_defaults_to_pipeline_yaml(compiled, capsys, tmp_path):
    code, out, err = cli(capsys, "compile", "llm-finetune")

    assert (code, err) == (0, "")
    assert out.startswith("compiled llm-finetune for a100x1 ")
    assert out.rstrip().endswith(": llm-finetune.yaml")
    assert (tmp_path / "llm-finetune.yaml").read_bytes() == compiled["default"].read_bytes()


def test_spot_and_flex_start_set_the_training_strategy(compiled):
    strategies = {name: _strategy(path) for name, path in compiled.items()}

    assert strategies == {"default": "STANDARD", "spot": "SPOT", "flex": "FLEX_START"}


def test_compile_params_become_the_templates_defaults(capsys, tmp_path):
    code, out, err = cli(
        capsys,
        *["compile", "llm-finetune", "--param", "preset=qwen2.5-0.5b", "--set", "optim.lr=1e-4"],
        *["--param", "data=gs://b/train.jsonl", "-o", "t.yaml"],
    )

    assert (code, err) == (0, "")
    params = yaml.safe_load((tmp_path / "t.yaml").read_text())["root"]["inputDefinitions"]
    defaults = {name: p["defaultValue"] for name, p in params["parameters"].items()}
    assert defaults["preset"] == "qwen2.5-0.5b" and defaults["data"] == "gs://b/train.jsonl"
    assert defaults["overrides"] == ["optim.lr=1e-4"]
    assert defaults["gate_metric"] == "exact_match"  # the rest stay declared


def test_compiled_images_are_never_latest(compiled):
    spec = yaml.safe_load(compiled["default"].read_text())
    executors = spec["deploymentSpec"]["executors"].values()
    images = [e["container"]["image"] for e in executors if "container" in e]
    pools = spec["components"]["comp-train"]["inputDefinitions"]["parameters"]["worker_pool_specs"][
        "defaultValue"
    ]
    images += [pool["container_spec"]["image_uri"] for pool in pools]

    assert len(images) > 3
    assert not [image for image in images if image.endswith(":latest") or ":" not in image]


# --- submit -------------------------------------------------------------------------------


def test_submit_dry_run_prints_the_whole_request_and_sends_nothing(
    capsys, vertex_fake, gcs_emulator
):
    code, out, err = cli(
        capsys,
        *["submit", "llm-finetune", "--dry-run", *destination(), "--experiment", "sft"],
        *["--service-account", SERVICE_ACCOUNT, "--param", "max_steps=7", "--label", "team=ml"],
    )

    assert (code, err) == (0, "")
    request = json.loads(out)
    job_id = request["pipelineJobId"]
    assert job_id.startswith("llm-finetune-")
    assert request["parent"] == f"projects/{PROJECT}/locations/{REGION}"
    body = request["pipelineJob"]
    assert body["displayName"] == job_id
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "llm-finetune"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"
    values = body["runtimeConfig"]["parameterValues"]
    assert values["max_steps"] == 7
    assert values["model_labels"] == {"liftoff_run": job_id, "git_sha": GIT_SHA[:12]}
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"] == {"team": "ml", "liftoff-pipeline": "llm-finetune"}
    contexts = f"projects/{PROJECT}/locations/{REGION}/metadataStores/default/contexts"
    assert request["experiment"] == {
        "context": f"{contexts}/sft",
        "addContextChildren": {"childContexts": [f"{contexts}/{job_id}"]},
    }
    assert vertex_fake.requests == []


def test_submit_creates_the_run_on_vertex(capsys, vertex_fake, gcs_emulator):
    root = fresh_root()
    code, out, err = cli(
        capsys,
        *["submit", "llm-finetune", *destination(root), "--api-endpoint", vertex_fake.url],
        *["--service-account", SERVICE_ACCOUNT, "--param", "max_steps=7", "--label", "team=ml"],
        *["--param", 'model_labels={"team": "ml"}'],
    )

    assert (code, err) == (0, "")
    (create,) = creates(vertex_fake)
    assert create.path == f"/v1/projects/{PROJECT}/locations/{REGION}/pipelineJobs"
    job_id = create.query["pipelineJobId"]
    assert job_id.startswith("llm-finetune-")
    body = create.body
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "llm-finetune"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == root
    values = body["runtimeConfig"]["parameterValues"]
    assert values["max_steps"] == 7
    assert values["model_labels"] == {
        "liftoff_run": job_id,
        "git_sha": GIT_SHA[:12],
        "team": "ml",  # the --param's labels are added to, not replaced
    }
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"] == {"liftoff-pipeline": "llm-finetune", "team": "ml"}
    resource = f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/{job_id}"
    submitted, console = out.splitlines()
    assert submitted == f"submitted {resource}"
    assert console.startswith("console: https://console.cloud.google.com/")
    assert f"/locations/{REGION}/" in console and f"project={PROJECT}" in console


def test_submit_takes_its_options_from_the_environment(
    capsys, monkeypatch, vertex_fake, gcs_emulator
):
    root = fresh_root()
    monkeypatch.setenv("LIFTOFF_PROJECT", "env-project")
    monkeypatch.setenv("LIFTOFF_REGION", "us-east1")
    monkeypatch.setenv("LIFTOFF_PIPELINE_ROOT", root)
    monkeypatch.setenv("LIFTOFF_SERVICE_ACCOUNT", "env@env-project.iam.gserviceaccount.com")

    code, out, err = cli(capsys, "submit", "llm-finetune")  # the endpoint: vertex_fake's env

    assert (code, err) == (0, "")
    (create,) = creates(vertex_fake)
    assert create.path == "/v1/projects/env-project/locations/us-east1/pipelineJobs"
    assert create.body["runtimeConfig"]["gcsOutputDirectory"] == root
    assert create.body["serviceAccount"] == "env@env-project.iam.gserviceaccount.com"
    assert "project=env-project" in out and "/locations/us-east1/" in out


def test_submit_takes_its_options_from_liftoff_toml(capsys, tmp_path, vertex_fake, gcs_emulator):
    root = fresh_root()
    (tmp_path / "liftoff.toml").write_text(
        f'[vertex]\nproject = "toml-project"\nregion = "asia-southeast1"\n'
        f'pipeline_root = "{root}"\nservice_account = "toml@toml-project.iam.gserviceaccount.com"\n'
    )

    code, out, err = cli(capsys, "submit", "llm-finetune", "--no-cache")

    assert (code, err) == (0, "")
    (create,) = creates(vertex_fake)
    assert create.path == "/v1/projects/toml-project/locations/asia-southeast1/pipelineJobs"
    assert create.body["runtimeConfig"]["gcsOutputDirectory"] == root
    assert create.body["serviceAccount"] == "toml@toml-project.iam.gserviceaccount.com"
    tasks = create.body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks and all(t["cachingOptions"] == {"enableCache": False} for t in tasks.values())


@pytest.mark.parametrize(
    ("state", "exit_code"), [("PIPELINE_STATE_SUCCEEDED", 0), ("PIPELINE_STATE_FAILED", 1)]
)
def test_submit_wait_reports_how_the_run_ended(capsys, vertex_fake, gcs_emulator, state, exit_code):
    vertex_fake.final_state = state
    vertex_fake.error_message = "task train failed:\nexit code 1"

    code, out, err = cli(capsys, "submit", "llm-finetune", *destination(fresh_root()), "--wait")

    assert code == exit_code
    assert len(creates(vertex_fake)) == 1
    if exit_code == 0:
        assert err == "" and out.splitlines()[-1] == f"state: {state}"
    else:
        assert_one_line_error(err, "submit")
        assert f"ended {state}: task train failed: exit code 1" in err
        assert f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/llm-finetune-" in err


def test_runs_submitted_in_the_same_second_do_not_collide(
    capsys, monkeypatch, vertex_fake, gcs_emulator
):
    real_gmtime, now = time.gmtime, time.time()
    # The clock stands still, so both submits fall in the same second, as in a parallel sweep.
    monkeypatch.setattr(time, "gmtime", lambda s=None: real_gmtime(now if s is None else s))
    for _ in range(2):
        code, out, err = cli(capsys, "submit", "llm-finetune", *destination(fresh_root()))
        assert (code, err) == (0, "")

    first, second = [r.query["pipelineJobId"] for r in creates(vertex_fake)]
    assert first != second
    assert len(vertex_fake.jobs) == 2


def test_a_vertex_api_error_is_one_line_exit_1(capsys, monkeypatch, vertex_fake, gcs_emulator):
    def deny(request, *, parent):
        message = f"Permission 'aiplatform.pipelineJobs.create' denied on resource\n'{parent}'"
        raise VertexError(403, "PERMISSION_DENIED", message)

    monkeypatch.setattr(vertex_fake, "create_job", deny)  # the fake, not the code under test

    code, out, err = cli(capsys, "submit", "llm-finetune", *destination(fresh_root()))

    assert code == 1 and out == ""
    assert_one_line_error(err, "submit")
    assert "403" in err and f"denied on resource 'projects/{PROJECT}/locations/{REGION}'" in err
    assert len(creates(vertex_fake)) == 1
