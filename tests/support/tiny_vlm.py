"""The VLM debug recipe, `python -m trainers.vlm --preset debug` exactly as README.md writes it,
run once a session in a directory of its own (W&B offline in ./wandb), and the trained model it
leaves in ./outputs/model, which the serving tests load (it answers colour questions, so a
served answer can be checked against the picture; nothing downloaded).

    def test_learns(vlm_debug_run): ...   # the run's directory, its return code checked
    def test_serve(tiny_vlm_dir): ...     # its model directory

Registered in tests/conftest.py's `pytest_plugins`, so the trainer runs once however many
modules use it (about 35 s on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.trainer_runs import run_trainer, trainer_env


@pytest.fixture(scope="session")
def vlm_debug_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("vlm-debug")
    env = trainer_env(WANDB_BASE_URL="http://127.0.0.1:9", OMP_NUM_THREADS="2")
    done = run_trainer(["--preset", "debug"], env=env, cwd=workdir, module="trainers.vlm")
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.fixture(scope="session")
def tiny_vlm_dir(vlm_debug_run: Path) -> str:
    return str(vlm_debug_run / "outputs" / "model")
