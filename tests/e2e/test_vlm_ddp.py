"""`liftoff run vlm-ddp --preset debug` end to end on the local target, as README.md writes it:
the debug preset trained with DDP over 2 gloo processes, evaluated, gated, registered, and served
answering questions about pictures; its output piped, so plain lines.

    .venv/bin/python -m pytest -q tests/e2e/test_vlm_ddp.py
"""

import json

import pytest

from serving.registry import LocalRegistry
from tests.support.wandb_records import read_run

pytestmark = pytest.mark.slow


def summary(run) -> dict[str, str]:
    """The summary's `  name: value` lines."""
    lines = run.output.split("\nvlm-ddp SUCCEEDED in ", 1)[1].splitlines()
    return dict(line.strip().split(": ", 1) for line in lines if ": " in line)


def test_trains_with_ddp_over_two_processes_and_beats_chance(vlm_run):
    meta = json.loads(
        (vlm_run.workdir / summary(vlm_run)["model"] / "training_metadata.json").read_text()
    )
    assert meta["world_size"] == 2 and meta["images_seen"] == 300 * 16
    chance = meta["final"]["eval/chance_exact_match"]
    assert 0.2 < chance < 0.5  # guard: the blind baseline is a real, non-trivial score
    version = LocalRegistry(str(vlm_run.workdir / ".liftoff" / "registry")).resolve("vlm-ddp@1")
    assert version.metrics["vqa_exact_match"] > chance + 0.25
    assert version.metrics["caption_loss"] < 0.5 and version.metrics["caption_examples"] > 0


def test_plain_lines_a_step_each_and_training_by_tenths(vlm_run):
    lines = vlm_run.output.splitlines()
    assert lines[0].startswith("vlm-ddp  run vlm-ddp-")
    training = [line for line in lines if line.startswith("train ") and " step " in line]
    assert 2 <= len(training) <= 11 and training[-1].split()[2] == "300/300"
    assert "\x1b" not in vlm_run.output


def test_registers_and_serves_answers_about_the_pictures(vlm_run):
    version = LocalRegistry(str(vlm_run.workdir / ".liftoff" / "registry")).resolve("vlm-ddp@1")
    check = version.deployments[-1]
    # The pipeline's sample instances: a red square, then a green circle.
    assert [i["prompt"] for i in check["instances"]] == [
        "what colour is the square?",
        "what colour is the circle?",
    ]
    assert check["healthy"] and check["predictions"] == ["red", "green"]
    line = summary(vlm_run)["deploy check"]
    assert "<image, " in line and "iVBOR" not in line  # images summarised, not dumped


def test_one_wandb_group_with_a_run_per_step(vlm_run):
    lines = vlm_run.output.splitlines()
    start = lines.index("  W&B runs (offline; `wandb sync DIR` uploads one):")
    labelled = [line.split() for line in lines[start + 1 : start + 4]]
    runs = {step: read_run(vlm_run.workdir / path) for step, path in labelled}
    assert [(step, r.job_type) for step, r in runs.items()] == [
        ("prepare-data", "prepare_data"),
        ("train", "train"),
        ("evaluate", "evaluate"),
    ]
    assert len({r.group for r in runs.values()}) == 1
    logged = {key for row in runs["train"].history for key in row}
    assert {"train/images_per_s", "train/tokens_per_s", "eval/vqa_exact_match"} <= logged
