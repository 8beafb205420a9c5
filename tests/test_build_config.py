"""The on-merge build (cloudbuild.yaml), the Dockerfiles and the image pinning it relies on.

    .venv/bin/python -m pytest -q tests/test_build_config.py

Nothing here builds or pushes: the build is read as data and checked for order, pinning and
the absence of secrets.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pin_images import main as pin_main
from components.pin_images import pin

ROOT = Path(__file__).resolve().parents[1]
STEP_IDS = [
    "test",
    "build-trainer",
    "build-serving",
    "push",
    "pin",
    "compile",
    "compile-vlm-ddp",
    "upload",
    "submit",
]
DIGEST = "0123456789abcdef" * 4
TRAINER = f"us-central1-docker.pkg.dev/p/liftoff/trainer@sha256:{DIGEST}"
SERVING = f"us-central1-docker.pkg.dev/p/liftoff/serving@sha256:{DIGEST[::-1]}"


@pytest.fixture(scope="module")
def build() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def _script(step: dict) -> str:
    return " ".join([step.get("entrypoint", ""), *step.get("args", [])])


def _index(steps: list[dict], pattern: str) -> list[int]:
    found = [i for i, step in enumerate(steps) if re.search(pattern, _script(step))]
    assert found, f"no step matches {pattern!r}"
    return found


def test_steps_run_in_order(build):
    assert [step["id"] for step in build["steps"]] == STEP_IDS


def test_tests_run_before_any_image_is_built(build):
    steps = build["steps"]
    tests = _index(steps, r"make test|pytest")
    builds = _index(steps, r"\bbuild\b.* -f ")
    assert len(builds) == 2
    assert max(tests) < min(builds)
    # A step that runs in parallel must still wait for the tests.
    for i in builds:
        assert "test" in steps[i].get("waitFor", ["test"])


def test_pin_after_push_and_compile_before_submit(build):
    steps = build["steps"]
    (push,) = _index(steps, r"docker push")
    (pin_step,) = _index(steps, r"components\.pin_images")
    (compile_step,) = _index(steps, r"\bcompile llm-finetune\b")
    (submit,) = _index(steps, r"\bsubmit llm-finetune\b")
    assert push < pin_step < compile_step < submit
    env = " ".join(steps[compile_step].get("env", []))
    assert "LIFTOFF_GIT_SHA=$COMMIT_SHA" in env
    (compile_vlm,) = _index(steps, r"\bcompile vlm-ddp\b")
    (upload,) = _index(steps, r"upload_pipeline")
    assert pin_step < compile_vlm < upload
    assert "vlm-ddp.yaml" in steps[upload]["args"][-1]


def test_every_docker_build_names_a_dockerfile_in_the_repo(build):
    builds = [s["args"] for s in build["steps"] if s.get("args", [None])[0] == "build"]
    assert len(builds) == 2
    for args in builds:
        dockerfile = args[args.index("-f") + 1]
        assert (ROOT / dockerfile).is_file(), dockerfile


def test_no_floating_image_reference(build):
    references = list(build["images"])
    for step in build["steps"]:
        if re.search(r"docker (build|push)|^ ?(build|push) ", _script(step)):
            references += step["args"]
    assert len(references) > 4
    for ref in references:
        assert not re.search(r":latest\b", ref), ref
    for ref in build["images"]:
        assert ref.endswith(":$SHORT_SHA"), ref


def test_no_secret_values(build):
    text = (ROOT / "cloudbuild.yaml").read_text()
    assert "WANDB_API_KEY" not in text
    # A value after key=, token: ... is a secret unless it is a Secret Manager resource name.
    value = r"(?i)(api_key|token|password|secret)\s*[=:]\s*['\"]?(?!projects/)\w{8,}"
    assert not re.search(value, text)
    assert re.search(value, "WANDB_TOKEN=abcdef0123456789")  # the guard can fail
    assert not re.search(r"\b[0-9a-f]{40}\b", text)
    assert "BEGIN PRIVATE KEY" not in text


def test_submit_passes_the_wandb_secret_by_resource_name(build):
    submit = build["steps"][STEP_IDS.index("submit")]
    assert "--param wandb_secret=projects/" in _script(submit)
    assert "secrets/wandb-api-key/versions/" in _script(submit)


def test_build_options(build):
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert int(build["timeout"].rstrip("s")) >= 3600
    assert {"_REGION", "_REPO", "_PIPELINE_ROOT", "_KFP_REPO", "_SERVICE_ACCOUNT", "_HARDWARE"} <= (
        build["substitutions"].keys()
    )


# --- pin_images ------------------------------------------------------------------------------


def test_pin_rewrites_both_defaults_and_nothing_else(monkeypatch):
    source = (ROOT / "components" / "images.py").read_text()
    pinned = pin(source, trainer=TRAINER, serving=SERVING)
    assert f'DEFAULT_TRAINER_IMAGE = "{TRAINER}"  # noqa: E501\n' in pinned
    assert f'DEFAULT_SERVING_IMAGE = "{SERVING}"  # noqa: E501\n' in pinned
    before, after = source.splitlines(keepends=True), pinned.splitlines(keepends=True)
    assert len(before) == len(after)
    changed = [b for b, a in zip(before, after, strict=True) if b != a]
    assert [line.split(" = ")[0] for line in changed] == [
        "DEFAULT_TRAINER_IMAGE",
        "DEFAULT_SERVING_IMAGE",
    ]
    assert pin(pinned, trainer=TRAINER, serving=SERVING) == pinned  # repinning is stable
    monkeypatch.delenv("LIFTOFF_TRAINER_IMAGE", raising=False)
    monkeypatch.delenv("LIFTOFF_SERVING_IMAGE", raising=False)
    namespace = {}
    exec(compile(pinned, "images.py", "exec"), namespace)
    assert (namespace["TRAINER_IMAGE"], namespace["SERVING_IMAGE"]) == (TRAINER, SERVING)


@pytest.mark.parametrize(
    "image",
    [
        "us-docker.pkg.dev/p/liftoff/trainer:0.1.0",
        "us-docker.pkg.dev/p/liftoff/trainer:latest",
        "us-docker.pkg.dev/p/liftoff/trainer@sha256:abc",
        f"us-docker.pkg.dev/p/liftoff/trainer@sha256:{DIGEST}\nX = 1",
    ],
)
def test_pin_refuses_an_unpinned_reference(image):
    source = (ROOT / "components" / "images.py").read_text()
    with pytest.raises(ValueError, match="not pinned"):
        pin(source, trainer=image, serving=SERVING)


def test_pin_command_rewrites_a_file_in_place_and_errors_in_one_line(tmp_path, capsys):
    target = tmp_path / "images.py"
    source = (ROOT / "components" / "images.py").read_bytes()
    target.write_bytes(source)
    assert pin_main(["--trainer", TRAINER, "--serving", SERVING, "--file", str(target)]) == 0
    assert target.read_bytes() == pin(source.decode(), trainer=TRAINER, serving=SERVING).encode()
    # A pinned module may be committed: it must still pass `make lint`.
    ruff = [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml")]
    linted = subprocess.run([*ruff, str(target)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout

    target.write_bytes(source)
    code = pin_main(["--trainer", "img:latest", "--serving", SERVING, "--file", str(target)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("pin_images: error:") and err.count("\n") == 1
    assert target.read_bytes() == source


def _import_images(**env: str) -> subprocess.CompletedProcess:
    code = "import components.images as m; print(m.TRAINER_IMAGE)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_images_refuse_latest_and_accept_a_digest():
    refused = _import_images(LIFTOFF_TRAINER_IMAGE="us-docker.pkg.dev/p/r/trainer:latest")
    assert refused.returncode != 0
    assert "ValueError" in refused.stderr and "LIFTOFF_TRAINER_IMAGE" in refused.stderr
    accepted = _import_images(LIFTOFF_TRAINER_IMAGE=TRAINER)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == TRAINER


# --- Dockerfiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ["trainers/Dockerfile", "serving/Dockerfile"])
def test_dockerfile_base_images_are_pinned(dockerfile):
    lines = (ROOT / dockerfile).read_text().splitlines()
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases
    for base in bases:
        name = base.rsplit("/", 1)[-1]
        assert "@sha256:" in base or (":" in name and not name.endswith(":latest")), base


def test_trainer_image_installs_kfp_and_leaves_the_command_to_kfp():
    text = (ROOT / "trainers" / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    installs = [line for line in instructions if "pip install" in line and "[" in line]
    assert installs and all("pipelines" in line for line in installs)
    assert not any(line.startswith(("ENTRYPOINT", "CMD")) for line in instructions)
    assert "PYTHONUNBUFFERED=1" in text
    assert not re.search(r"(?m)^(ENV|ARG)\b.*(WANDB_API_KEY|TOKEN|PASSWORD)", text)


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".git", "outputs", ".liftoff", "wandb", "tests", "benchmarks"} <= ignored
