"""The images: their Dockerfiles, the build context, and pinning their digests
(components/pin_images.py). cloudbuild.yaml itself is run step by step in
tests/test_cloudbuild.py.

    .venv/bin/python -m pytest -q tests/test_build_config.py

Nothing here builds or pushes: the Dockerfiles are read as data, and the shell of their torch
install runs with a stub `pip`.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.pin_images import main as pin_main
from components.pin_images import pin
from tests.test_lock import locked

ROOT = Path(__file__).resolve().parents[1]
DIGEST = "0123456789abcdef" * 4
TRAINER = f"us-central1-docker.pkg.dev/p/liftoff/trainer@sha256:{DIGEST}"
SERVING = f"us-central1-docker.pkg.dev/p/liftoff/serving@sha256:{DIGEST[::-1]}"
SERVING_GPU = f"us-central1-docker.pkg.dev/p/liftoff/serving-gpu@sha256:{'a' * 64}"
PINS = {"trainer": TRAINER, "serving": SERVING, "serving_gpu": SERVING_GPU}


# --- pin_images ------------------------------------------------------------------------------


def test_pin_rewrites_the_three_defaults_and_nothing_else():
    source = (ROOT / "components" / "images.py").read_text()
    pinned = pin(source, **PINS)
    assert f'DEFAULT_TRAINER_IMAGE = "{TRAINER}"  # noqa: E501\n' in pinned
    assert f'DEFAULT_SERVING_IMAGE = "{SERVING}"  # noqa: E501\n' in pinned
    assert f'DEFAULT_SERVING_GPU_IMAGE = "{SERVING_GPU}"  # noqa: E501\n' in pinned
    before, after = source.splitlines(keepends=True), pinned.splitlines(keepends=True)
    assert len(before) == len(after)
    changed = [b for b, a in zip(before, after, strict=True) if b != a]
    assert [line.split(" = ")[0] for line in changed] == [
        "DEFAULT_TRAINER_IMAGE",
        "DEFAULT_SERVING_IMAGE",
        "DEFAULT_SERVING_GPU_IMAGE",
    ]
    assert pin(pinned, **PINS) == pinned  # repinning is stable
    namespace = {}
    exec(compile(pinned, "images.py", "exec"), namespace)
    assert namespace["PINNED"] == {
        "trainer": TRAINER,
        "serving": SERVING,
        "serving-gpu": SERVING_GPU,
    }


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
        pin(source, **{**PINS, "serving_gpu": image})


def test_pin_command_rewrites_a_file_in_place_and_errors_in_one_line(tmp_path, capsys):
    target = tmp_path / "images.py"
    source = (ROOT / "components" / "images.py").read_bytes()
    target.write_bytes(source)
    flags = ["--trainer", TRAINER, "--serving", SERVING, "--serving-gpu", SERVING_GPU]
    assert pin_main([*flags, "--file", str(target)]) == 0
    assert target.read_bytes() == pin(source.decode(), **PINS).encode()
    # A pinned module may be committed: it must still pass `make lint`.
    ruff = [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml")]
    linted = subprocess.run([*ruff, str(target)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout

    target.write_bytes(source)
    code = pin_main([*flags[:-1], "img:latest", "--file", str(target)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("pin_images: error:") and err.count("\n") == 1
    assert target.read_bytes() == source


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


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    lines = (ROOT / dockerfile).read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    joined = re.sub(r"\\\n\s*", " ", text)
    return [tuple(line.split(None, 1)) for line in joined.splitlines() if line.strip()]


def _torch_install(dockerfile: str) -> str:
    """The RUN that installs torch, before liftoff itself."""
    (run,) = [
        a for k, a in _instructions(dockerfile) if k == "RUN" and "torch" in a and "[" not in a
    ]
    return run


def _run_with_stub_pip(script: str, tmp_path: Path, **env: str) -> tuple[int, list, str]:
    """Run a RUN instruction's shell beside a copy of the lock, with `pip` recording its
    arguments; (exit status, pip calls, stderr)."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    stub = tmp_path / "bin" / "pip"
    log = tmp_path / "pip.jsonl"
    log.write_text("")
    stub.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "open(os.environ['PIP_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    stub.chmod(0o755)
    (tmp_path / "requirements.lock").write_bytes((ROOT / "requirements.lock").read_bytes())
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["sh", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PATH": path, "PIP_LOG": str(log), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, [json.loads(line) for line in log.read_text().splitlines()], done.stderr


LOCKED_PIP = ["install", "-c", "requirements.lock", "pip", "setuptools"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_TORCH = ["install", "-c", "requirements.lock", "torch"]


def test_serving_images_differ_only_in_the_torch_wheel(tmp_path):
    instructions = _instructions("serving/Dockerfile")
    assert ("ARG", "TORCH=cpu") in instructions
    run = _torch_install("serving/Dockerfile")
    assert [a for _, a in instructions if "TORCH" in a] == ["TORCH=cpu", run]  # used only there
    cpu_wheel = f"torch=={locked()['torch']}+cpu"
    assert _run_with_stub_pip(run, tmp_path, TORCH="cpu")[:2] == (
        0,
        [LOCKED_PIP, [*CUDA_TORCH[:3], "--extra-index-url", CPU_INDEX, cpu_wheel]],
    )
    assert _run_with_stub_pip(run, tmp_path, TORCH="cuda")[:2] == (0, [LOCKED_PIP, CUDA_TORCH])
    code, calls, err = _run_with_stub_pip(run, tmp_path, TORCH="rocm")
    assert code == 2 and calls == [LOCKED_PIP] and "TORCH=rocm" in err


def test_gpu_serving_and_trainer_install_the_same_torch_from_the_lock(tmp_path):
    trainer = _run_with_stub_pip(_torch_install("trainers/Dockerfile"), tmp_path)
    gpu = _run_with_stub_pip(_torch_install("serving/Dockerfile"), tmp_path, TORCH="cuda")
    assert trainer[:2] == gpu[:2] == (0, [LOCKED_PIP, CUDA_TORCH])


@pytest.mark.parametrize("dockerfile", ["trainers/Dockerfile", "serving/Dockerfile"])
def test_every_pip_install_is_constrained_by_the_lock(dockerfile):
    runs = [a for k, a in _instructions(dockerfile) if k == "RUN"]
    installs = [i for run in runs for i in re.findall(r"pip install ([^;&]*)", run)]
    assert len(installs) >= 3
    assert all(i.startswith("-c requirements.lock ") for i in installs), installs
