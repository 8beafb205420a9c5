"""Which trainer each component step works for (the `trainer` parameter: "llm" or "vlm"): its
typed steps, and the small pure pieces of the tasks, without KFP. The steps themselves run
under kfp.local in test_components.py (llm) and test_components_vlm.py (vlm)."""

import json
import os
import sys

import pytest

from components.common import TRAINERS, trainer_argv, trainer_steps
from components.train import task as train_task
from trainers.common.config import ConfigError
from trainers.common.steps import gate_value


@pytest.mark.parametrize("trainer", ["llm", "vlm"])
def test_each_trainer_declares_its_steps(trainer):
    steps = trainer_steps(trainer)
    assert steps is TRAINERS[trainer] and steps.name == trainer
    assert steps.module == f"trainers.{trainer}"
    cfg = steps.config(trainer_argv(preset="debug", max_steps=7, overrides=["optim.lr=0.5"]))
    assert type(cfg).__module__ == f"trainers.{trainer}.config"
    assert (cfg.train.max_steps, cfg.optim.lr) == (7, 0.5)
    assert steps.check_gate_metric(steps.gate_metrics[0]) == steps.gate_metrics[0]


def test_an_unknown_trainer_is_a_one_line_error():
    with pytest.raises(ValueError, match="trainer: 'gpt' must be one of llm, vlm"):
        trainer_steps("gpt")
    with pytest.raises(ValueError, match="trainer: 'gpt'"):
        train_task.train(argv=[], output_dir="out", trainer="gpt")


def test_a_gate_metric_of_another_trainer_is_refused():
    with pytest.raises(ConfigError, match="the llm trainer's are exact_match, neg_eval_loss"):
        trainer_steps("llm").check_gate_metric("vqa_exact_match")


def test_choosing_a_trainer_imports_no_model_library():
    from tests.support.imports import modules_after

    loaded = modules_after("import components.common")
    assert "trainers.vlm.steps" in loaded and "torch" not in loaded


def test_train_runs_the_chosen_trainer_as_its_own_process(tmp_path, monkeypatch):
    calls = []

    def run(argv, *, env, module):
        calls.append((argv, env, module))
        out = argv[argv.index("--output-dir") + 1]
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "training_metadata.json").write_text(json.dumps({"steps": 3}))
        assert out == str(tmp_path / "model")

    monkeypatch.setattr(train_task, "run_trainer", run)
    metadata = train_task.train(
        argv=["--preset", "debug"],
        output_dir=str(tmp_path / "model"),
        trainer="vlm",
        nproc_per_node=2,
    )

    assert metadata == {"steps": 3}
    ((argv, env, module),) = calls
    assert argv[:5] == [sys.executable, "-m", "trainers.vlm", "--preset", "debug"]
    assert module == "trainers.vlm"
    assert argv[argv.index("--checkpoint-dir") + 1] == str(tmp_path / "checkpoints")
    assert env["LIFTOFF_NPROC_PER_NODE"] == "2"  # the trainer relaunches under torchrun


def test_a_failed_trainer_names_its_module_and_passes_its_status_on():
    from components.train.process import TrainerFailed, run_trainer

    command = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(TrainerFailed, match="python -m trainers.vlm exited with status 3") as err:
        run_trainer(command, env=dict(os.environ), module="trainers.vlm")
    assert err.value.code == 3


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
def test_gate_metrics_are_higher_is_better(gate_metric, value):
    metrics = {"vqa_exact_match": 0.75, "eval_loss": 2.0, "caption_loss": 1.25, "vqa_loss": 2.5}
    assert gate_metric in trainer_steps("vlm").gate_metrics
    assert gate_value(metrics, gate_metric) == value


def test_a_gate_on_a_metric_the_split_lacks_is_a_one_line_error():
    with pytest.raises(ConfigError, match="'neg_caption_loss' is invalid: it needs caption_loss"):
        gate_value({"vqa_exact_match": 0.5}, "neg_caption_loss")
