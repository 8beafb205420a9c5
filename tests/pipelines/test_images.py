"""Where a compiled pipeline's images come from: flags, LIFTOFF_*_IMAGE, the digests a build
pinned, or the project's Artifact Registry as cloudbuild.yaml pushes to it; never a reference
that nothing publishes. The serving build follows the serving profile.

.venv/bin/python -m pytest -q tests/pipelines/test_images.py
"""

import json

import pytest
import yaml

from components import images as pinned_images
from components.images import GOOGLE_STEPS_IMAGE
from pipelines.cli import main
from pipelines.images import ENV
from tests.pipelines.contract import custom_job

SHA = "5f3c2a19d0be4471a8c6"
DIGEST = "ab" * 32


@pytest.fixture(autouse=True)
def no_images(monkeypatch, tmp_path):
    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LIFTOFF_GIT_SHA", SHA)
    monkeypatch.chdir(tmp_path)


def compile_images(capsys, tmp_path, *argv: str) -> dict[str, set[str]]:
    """`liftoff compile llm-finetune ARGV`: the images of its trainer steps and its model."""
    code = main(["compile", "llm-finetune", *argv, "-o", "p.yaml"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    executors = spec["deploymentSpec"]["executors"]
    steps = {e["container"]["image"] for e in executors.values() if "container" in e}
    pools = custom_job(spec).job_spec.worker_pool_specs
    importer = executors["exec-importer"]["importer"]["metadata"]["containerSpec"]
    return {
        "trainer": (steps - {GOOGLE_STEPS_IMAGE}) | {p.container_spec.image_uri for p in pools},
        "serving": {importer["imageUri"]},
    }


def test_images_come_from_the_projects_artifact_registry(capsys, tmp_path):
    found = compile_images(capsys, tmp_path, "--project", "p", "--region", "europe-west4")
    registry = "europe-west4-docker.pkg.dev/p/liftoff"
    # The tag cloudbuild.yaml pushes: the commit's short sha.
    assert found == {
        "trainer": {f"{registry}/trainer:5f3c2a1"},
        "serving": {f"{registry}/serving-gpu:5f3c2a1"},
    }


@pytest.mark.parametrize(("serving", "image"), [("cpu", "serving"), ("l4x1", "serving-gpu")])
def test_the_serving_build_matches_the_serving_profile(capsys, tmp_path, serving, image):
    flags = [
        "--project",
        "p",
        "--region",
        "us-east1",
        "--image-repo",
        "ml",
        "--image-version",
        "v7",
    ]
    found = compile_images(capsys, tmp_path, *flags, "--serving-hardware", serving)
    assert found["serving"] == {f"us-east1-docker.pkg.dev/p/ml/{image}:v7"}
    assert found["trainer"] == {"us-east1-docker.pkg.dev/p/ml/trainer:v7"}


def test_flags_then_environment_then_pinned_digests_then_the_registry(
    capsys, tmp_path, monkeypatch
):
    registry = ["--project", "p", "--region", "us-central1"]
    pinned = f"us-central1-docker.pkg.dev/build/liftoff/trainer@sha256:{DIGEST}"
    monkeypatch.setitem(pinned_images.PINNED, "trainer", pinned)
    assert compile_images(capsys, tmp_path, *registry)["trainer"] == {pinned}

    monkeypatch.setenv("LIFTOFF_TRAINER_IMAGE", "r.example/t/trainer:env")
    assert compile_images(capsys, tmp_path, *registry)["trainer"] == {"r.example/t/trainer:env"}

    found = compile_images(capsys, tmp_path, *registry, "--trainer-image", "r.example/t/x:flag")
    assert found["trainer"] == {"r.example/t/x:flag"}
    assert found["serving"] == {"us-central1-docker.pkg.dev/p/liftoff/serving-gpu:5f3c2a1"}


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        ([], "no trainer image: pass --trainer-image, set LIFTOFF_TRAINER_IMAGE"),
        (["--project", "p"], "--region"),  # half a registry names nothing
        (["--trainer-image", "r.example/t/trainer:latest"], "not pinned"),
        (["--trainer-image", "trainer"], "not an image reference"),
    ],
)
def test_an_image_nothing_publishes_is_refused(capsys, tmp_path, argv, named):
    code = main(["compile", "llm-finetune", *argv, "-o", "p.yaml"])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("liftoff compile: error: ") and err.count("\n") == 1
    assert named in err
    assert list(tmp_path.iterdir()) == []


def test_submit_takes_the_registry_from_its_project_and_region(capsys, vertex_fake, gcs_emulator):
    destination = ["--project", "proj", "--region", "asia-east1", "--pipeline-root", "gs://b/r"]
    code = main(["submit", "vlm-ddp", "--dry-run", *destination, "--image-version", "rc1"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    spec = json.loads(out)["pipelineJob"]["pipelineSpec"]
    (pool,) = custom_job(spec).job_spec.worker_pool_specs
    assert pool.container_spec.image_uri == "asia-east1-docker.pkg.dev/proj/liftoff/trainer:rc1"
    assert vertex_fake.requests == []
