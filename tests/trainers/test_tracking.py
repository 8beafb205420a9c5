"""The W&B tracker, checked against the run files real offline wandb runs write.

Starting a run costs about half a second, so one module-scoped run carries most assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.wandb_records import isolate, read_run
from trainers.common.tracking import NullTracker, WandbTracker, _mode, start_tracker

BIG = {"card": "x" * 70_000}
DEFAULTS = {"optim": {"lr": 0.001, "betas": [0.9, 0.95]}, "steps": 3, "model": "tiny"}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory):
    """One finished offline run that used a dataset, logged 3 steps and two model artifacts."""
    root = tmp_path_factory.mktemp("wandb")
    checkpoint = root / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "weights.bin").write_bytes(b"\0" * 16)
    (checkpoint / "config.json").write_text("{}")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, root)
        mp.delenv("WANDB_MODE")  # no key: start_tracker itself must choose offline
        mp.setenv("WANDB_RUN_GROUP", "pipeline-42")
        tracker = start_tracker(
            enabled=True,
            project="liftoff-test",
            config=DEFAULTS,
            job_type="sft",
            name="unit",
            directory=str(root / "dir"),
        )
        config = tracker.run_config()
        tracker.use_artifact(
            name="alpaca", type="dataset", uri="gs://bkt/data/alpaca.jsonl", metadata={"rows": 52}
        )
        for step in range(10, 13):
            tracker.log({"train/loss": 1.0 / step, "lr": 0.001}, step=step)
        tracker.log_artifact(
            name="sft-model",
            type="model",
            uri="gs://bkt/runs/7/model/",
            metadata={"eval": {"loss": 0.5}},
            aliases=["best"],
        )
        tracker.log_artifact(name="fuse-model", type="model", uri="/gcs/bkt/runs/7/model")
        tracker.log_artifact(  # metadata past 64 KiB: its record spans three 32 KiB blocks
            name="sft-checkpoint", type="checkpoint", uri=str(checkpoint), metadata=BIG
        )
        tracker.finish()
    return tracker, config, read_run(root / "dir")


def test_start_tracker_returns_a_wandb_tracker_offline_without_a_key(logged):
    tracker, _, _ = logged
    assert isinstance(tracker, WandbTracker)
    assert tracker.run.offline


@pytest.mark.parametrize(
    ("env", "mode"),
    [({}, "offline"), ({"WANDB_API_KEY": "k"}, None), ({"WANDB_MODE": "disabled"}, None)],
)
def test_mode_is_offline_only_without_a_key(env, mode, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert _mode() == mode


def test_run_config_is_the_nested_config(logged):
    _, config, _ = logged
    assert config == DEFAULTS
    assert isinstance(config["optim"], dict)


def test_config_is_recorded_nested(logged):
    _, _, run = logged
    assert run.config == DEFAULTS


def test_run_identity(logged):
    _, _, run = logged
    assert (run.project, run.job_type, run.group, run.name) == (
        "liftoff-test",
        "sft",
        "pipeline-42",
        "unit",
    )
    assert run.exit_code == 0


def test_every_row_carries_global_step(logged):
    _, _, run = logged
    rows = [(r["global_step"], r["train/loss"], r["lr"]) for r in run.history]
    assert rows == [(10, 1 / 10, 0.001), (11, 1 / 11, 0.001), (12, 1 / 12, 0.001)]
    # W&B's own counter starts at 0 regardless: global_step is what the charts use.
    assert [r["_step"] for r in run.history] == [0, 1, 2]
    assert run.summary["global_step"] == 12


def test_all_metrics_are_plotted_against_global_step(logged):
    _, _, run = logged
    assert {"name": "global_step", "options": {"defined": True}} in run.metrics
    glob = [m for m in run.metrics if m.get("glob_name") == "*"]
    assert [m["step_metric"] for m in glob] == ["global_step"]


def test_gs_model_is_logged_by_reference_with_metadata_and_aliases(logged):
    _, _, run = logged
    model = run.artifact("sft-model")
    assert (model.type, model.used) == ("model", False)
    assert model.metadata == {"eval": {"loss": 0.5}}
    assert set(model.aliases) == {"best", "latest"}
    assert model.entries == {
        "model": {
            "digest": "gs://bkt/runs/7/model/",
            "ref": "gs://bkt/runs/7/model/",
            "size": 0,
            "local_path": None,
        }
    }


def test_local_checkpoint_is_logged_by_content(logged):
    _, _, run = logged
    checkpoint = run.artifact("sft-checkpoint")
    assert (checkpoint.type, checkpoint.metadata) == ("checkpoint", BIG)
    assert sorted(checkpoint.entries) == ["config.json", "weights.bin"]
    assert checkpoint.entries["weights.bin"]["size"] == 16
    assert checkpoint.entries["weights.bin"]["ref"] is None


def test_dataset_is_declared_as_an_input(logged):
    _, _, run = logged
    assert [a.name for a in run.used_artifacts] == ["alpaca"]
    dataset = run.artifact("alpaca")
    assert (dataset.type, dataset.metadata) == ("dataset", {"rows": 52})
    assert dataset.entries["alpaca.jsonl"]["ref"] == "gs://bkt/data/alpaca.jsonl"
    assert [a.name for a in run.logged_artifacts] == ["sft-model", "fuse-model", "sft-checkpoint"]


def test_vertex_fuse_paths_are_logged_as_gs_references(logged):
    _, _, run = logged
    assert run.artifact("fuse-model").entries["model"]["ref"] == "gs://bkt/runs/7/model"


def test_missing_local_artifact_path_is_refused(logged, tmp_path):
    tracker, _, _ = logged
    with pytest.raises(FileNotFoundError, match="nothing at"):
        tracker.log_artifact(name="x", type="model", uri=str(tmp_path / "absent"))


def test_a_table_cell_holding_a_pil_image_is_logged_as_a_picture(tmp_path, monkeypatch):
    from PIL import Image

    isolate(monkeypatch, tmp_path)
    tracker = start_tracker(enabled=True, project="p", config={}, job_type="evaluate")
    picture = Image.new("RGB", (8, 6), (255, 0, 0))
    rows = [[picture, "what colour is the square?", True], [None, "no image", False]]
    tracker.log_table("eval/samples", columns=["image", "question", "correct"], rows=rows, step=3)
    tracker.finish()

    run = read_run(tmp_path)
    (row,) = [r for r in run.history if "eval/samples" in r]
    assert row["global_step"] == 3
    assert (row["eval/samples"]["_type"], row["eval/samples"]["nrows"]) == ("table-file", 2)
    # wandb puts a table with media in a run_table artifact: the table and the PNG it points at.
    (table,) = [a for a in run.artifacts if a.type == "run_table"]
    (png,) = [path for path in table.entries if path.endswith(".png")]
    staged = Path(table.entries["eval/samples.table.json"]["local_path"])
    cells = json.loads(staged.read_text())
    image = cells["data"][0][0]
    assert (image["_type"], image["path"]) == ("image-file", png)
    assert (image["width"], image["height"]) == (8, 6)
    assert cells["data"][0][1:] == ["what colour is the square?", True]
    assert cells["data"][1] == [None, "no image", False]


def test_launch_overrides_win_over_defaults(tmp_path, monkeypatch):
    """W&B Launch hands its overrides to the job as env: WANDB_LAUNCH=True plus the run
    config as JSON in WANDB_CONFIG (what the Vertex runner puts in the container spec)."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_LAUNCH", "True")
    monkeypatch.setenv("WANDB_CONFIG", json.dumps({"optim": {"lr": 0.05}, "steps": 7}))
    tracker = start_tracker(enabled=True, project="p", config=DEFAULTS, job_type="sft")
    config = tracker.run_config()
    tracker.finish()
    expected = {"optim": {"lr": 0.05, "betas": [0.9, 0.95]}, "steps": 7, "model": "tiny"}
    assert config == expected
    assert read_run(tmp_path).config == expected


def test_disabled_tracker_is_a_null_tracker_that_touches_nothing(tmp_path, secret_manager):
    tracker = start_tracker(
        enabled=False,
        project="p",
        config=DEFAULTS,
        job_type="sft",
        directory=str(tmp_path / "dir"),
        wandb_secret="projects/p/secrets/k/versions/1",
    )
    assert isinstance(tracker, NullTracker)
    assert not (tmp_path / "dir").exists()
    assert secret_manager.requests == []
    assert "WANDB_API_KEY" not in os.environ


def test_null_tracker_returns_a_copy_of_its_config():
    tracker = NullTracker(DEFAULTS)
    config = tracker.run_config()
    config["optim"]["lr"] = 1.0
    assert tracker.run_config() == DEFAULTS
    tracker.log({"loss": 1.0}, step=1)
    tracker.log_artifact(name="m", type="model", uri="/nonexistent")
    tracker.use_artifact(name="d", type="dataset", uri="gs://b/d")
    tracker.finish(exit_code=1)
    assert tracker.run_config() == DEFAULTS


def test_importing_trainers_tracking_stays_cheap():
    code = (
        "import sys, trainers.common.tracking, trainers.common.secrets\n"
        "heavy = [m for m in ('wandb', 'PIL', 'google.cloud.secretmanager', 'kfp',"
        " 'google.cloud.aiplatform', 'google_cloud_pipeline_components') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
