"""Which trainer each component step works for (the `trainer` parameter: "llm" or "vlm"), and
the small pure pieces of the tasks, without KFP. The steps themselves run under kfp.local in
test_components.py (llm) and test_components_vlm.py (vlm)."""

import json
import subprocess
import sys

import pytest

from components.common import trainer_config, trainer_task
from components.train import task as train_task


@pytest.mark.parametrize(
    ("step", "trainer", "module"),
    [
        ("prepare_data", "llm", "components.prepare_data.task"),
        ("prepare_data", "vlm", "components.prepare_data.vlm"),
        ("evaluate", "llm", "components.evaluate.task"),
        ("evaluate", "vlm", "components.evaluate.vlm"),
    ],
)
def test_each_trainer_has_its_task_module(step, trainer, module):
    task = trainer_task(step, trainer=trainer)
    assert task.__name__ == module
    assert callable(getattr(task, step))


def test_an_unknown_trainer_is_a_one_line_error():
    with pytest.raises(ValueError, match="trainer: 'gpt' must be one of llm, vlm"):
        trainer_task("evaluate", trainer="gpt")
    with pytest.raises(ValueError, match="trainer: 'gpt'"):
        train_task.train(argv=[], output_dir="out", trainer="gpt")


@pytest.mark.parametrize("trainer", ["llm", "vlm"])
def test_trainer_config_is_that_trainers_resolved_config(trainer):
    cfg = trainer_config(["--preset", "debug", "--max-steps", "7"], trainer=trainer)
    assert type(cfg).__module__ == f"trainers.{trainer}.config"
    assert cfg.train.max_steps == 7


def test_train_runs_the_chosen_trainer_as_its_own_process(tmp_path, monkeypatch):
    calls = []

    def run(argv, env):
        calls.append((argv, env))
        out = argv[argv.index("--output-dir") + 1]
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "training_metadata.json").write_text(json.dumps({"steps": 3}))
        assert out == str(tmp_path / "model")
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(train_task.subprocess, "run", run)
    metadata = train_task.train(
        argv=["--preset", "debug"],
        output_dir=str(tmp_path / "model"),
        trainer="vlm",
        nproc_per_node=2,
    )

    assert metadata == {"steps": 3}
    ((argv, env),) = calls
    assert argv[:5] == [sys.executable, "-m", "trainers.vlm", "--preset", "debug"]
    assert argv[argv.index("--checkpoint-dir") + 1] == str(tmp_path / "checkpoints")
    assert env["LIFTOFF_NPROC_PER_NODE"] == "2"  # the trainer relaunches under torchrun


def test_a_failed_trainer_names_its_module(tmp_path, monkeypatch):
    monkeypatch.setattr(
        train_task.subprocess, "run", lambda argv, env: subprocess.CompletedProcess(argv, 3)
    )
    with pytest.raises(
        train_task.TrainerFailed, match="python -m trainers.vlm exited with status 3"
    ):
        train_task.train(argv=[], output_dir=str(tmp_path / "model"), trainer="vlm")


def test_final_metrics_carry_images_seen_when_the_trainer_counts_them():
    llm = {"final": {"train/loss": 1.5}, "steps": 4, "tokens_seen": 100}
    assert train_task.final_metrics(llm) == {"train_loss": 1.5, "steps": 4.0, "tokens_seen": 100.0}
    vlm = {**llm, "images_seen": 32}
    assert train_task.final_metrics(vlm)["images_seen"] == 32.0


@pytest.mark.parametrize(
    ("gate_metric", "value"),
    [
        ("vqa_exact_match", 0.75),
        ("neg_eval_loss", -2.0),
        ("neg_caption_loss", -1.25),
        ("neg_vqa_loss", -2.5),
    ],
)
def test_vlm_gate_metrics_are_higher_is_better(gate_metric, value):
    from components.evaluate.vlm import GATE_METRICS, gate_value

    metrics = {"vqa_exact_match": 0.75, "eval_loss": 2.0, "caption_loss": 1.25, "vqa_loss": 2.5}
    assert gate_metric in GATE_METRICS
    assert gate_value(metrics, gate_metric) == value


def test_a_gate_on_a_metric_the_split_lacks_is_a_one_line_error():
    from components.evaluate.vlm import gate_value

    with pytest.raises(ValueError, match="'neg_caption_loss' needs caption_loss"):
        gate_value({"vqa_exact_match": 0.5}, "neg_caption_loss")
