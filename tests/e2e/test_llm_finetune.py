"""`liftoff run llm-finetune` end to end on the local target, through the real CLI: the gate
passing (registered, served, predictions recorded) and failing (nothing registered)."""

import json
import os
import subprocess
import sys

import pytest

from serving.registry import LocalRegistry
from tests.support.kfp_local import TINY_OVERRIDES
from tests.support.trainer_runs import REPO, trainer_env
from tests.support.wandb_records import read_run

pytestmark = pytest.mark.slow


def liftoff_run(workdir, *params: str) -> tuple[dict, str]:
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    argv = ["run", "llm-finetune", "--preset", "debug", "--workdir", str(workdir), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv, *sets, "--param", "max_steps=8", *params],
        cwd=REPO,
        env=trainer_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_gate_passes_registers_and_serves(tmp_path):
    result, stdout = liftoff_run(tmp_path, "--param", "gate_threshold=0.0")
    assert result["pipeline"] == "llm-finetune" and result["status"] == "SUCCEEDED"
    assert set(result["metrics"]) >= {"eval_loss", "perplexity", "exact_match"}
    assert os.path.isfile(os.path.join(result["model_uri"], "config.json"))
    assert result["registry"]["name"] == "llm-finetune" and result["registry"]["version"] == 1
    version = LocalRegistry(str(tmp_path / "registry")).resolve("llm-finetune@latest")
    assert version.labels["liftoff_run"] == result["run_id"]
    check = version.deployments[-1]
    assert check["healthy"] and len(check["predictions"]) == len(check["instances"]) == 2
    assert result["deploy_check"] == check
    assert "registered: llm-finetune@1" in stdout and "deploy check: healthy" in stdout

    runs = [read_run(d) for d in result["wandb_dirs"]]
    assert sorted(r.job_type for r in runs) == ["evaluate", "prepare_data", "train"]
    groups = {r.group for r in runs}
    assert len(groups) == 1 and groups.pop().startswith("llm-finetune-")


def test_gate_fails_nothing_registered(tmp_path):
    result, stdout = liftoff_run(tmp_path, "--param", "gate_threshold=1.5")
    assert result["status"] == "SUCCEEDED"
    assert result["gate"] < 1.5 and result["registry"] is None and result["deploy_check"] is None
    assert LocalRegistry(str(tmp_path / "registry")).names() == []
    assert "not registered: gate metric" in stdout


def test_a_failing_step_fails_the_run(tmp_path):
    argv = ["run", "llm-finetune", "--workdir", str(tmp_path), "--json"]
    missing = str(tmp_path / "missing.jsonl")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv, "--param", f"data={missing}"],
        cwd=REPO,
        env=trainer_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "FAILED" and "prepare-data" in result["error"]
    assert f"{missing}: no such file" in done.stdout + done.stderr
