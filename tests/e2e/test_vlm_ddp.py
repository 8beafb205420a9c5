"""`liftoff run vlm-ddp` end to end on the local target, through the real CLI: the debug preset
trained with DDP over 2 gloo processes, evaluated, gated, registered, and served answering
questions about pictures."""

import json
import os
import subprocess
import sys

import pytest

from serving.registry import LocalRegistry
from tests.support.trainer_runs import REPO, trainer_env
from tests.support.wandb_records import read_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vlm-ddp")
    argv = ["run", "vlm-ddp", "--preset", "debug", "--workdir", str(workdir), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv],
        cwd=REPO,
        env=trainer_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout, workdir


def test_trains_with_ddp_over_two_processes_and_beats_chance(run):
    result, _, _ = run
    assert result["pipeline"] == "vlm-ddp" and result["status"] == "SUCCEEDED"
    with open(os.path.join(result["model_uri"], "training_metadata.json")) as f:
        meta = json.load(f)
    assert meta["world_size"] == 2 and meta["images_seen"] == 300 * 16
    chance = meta["final"]["eval/chance_exact_match"]
    assert 0.2 < chance < 0.5  # guard: the blind baseline is a real, non-trivial score
    assert result["metrics"]["vqa_exact_match"] > chance + 0.25
    assert result["metrics"]["caption_loss"] < 0.5 and result["metrics"]["caption_examples"] > 0


def test_registers_and_serves_answers_about_the_pictures(run):
    result, stdout, workdir = run
    assert result["registry"]["name"] == "vlm-ddp" and result["registry"]["version"] == 1
    version = LocalRegistry(str(workdir / "registry")).resolve("vlm-ddp@latest")
    check = version.deployments[-1]
    # The pipeline's sample instances: a red square, then a green circle.
    assert [i["prompt"] for i in check["instances"]] == [
        "what colour is the square?",
        "what colour is the circle?",
    ]
    assert check["healthy"] and check["predictions"] == ["red", "green"]
    (line,) = [x for x in stdout.splitlines() if x.startswith("  deploy check: healthy")]
    assert "<image, " in line and "iVBOR" not in line  # images summarised, not dumped


def test_one_wandb_group_with_a_run_per_step(run):
    result, _, _ = run
    runs = [read_run(d) for d in result["wandb_dirs"]]
    assert sorted(r.job_type for r in runs) == ["evaluate", "prepare_data", "train"]
    assert len({r.group for r in runs}) == 1
    (train,) = [r for r in runs if r.job_type == "train"]
    logged = {key for row in train.history for key in row}
    assert {"train/images_per_s", "train/tokens_per_s", "eval/vqa_exact_match"} <= logged
