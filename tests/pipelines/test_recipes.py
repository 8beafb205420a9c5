"""Recipes as files: `--config recipe.yaml` and `--print-config` on the trainers and on `liftoff
run/submit` (flags win over the file), the examples' recipes, bad recipes as one line.

    .venv/bin/python -m pytest -q tests/pipelines/test_recipes.py
"""

import json

import pytest
import yaml

from pipelines.catalog import get_pipeline
from pipelines.cli import main as liftoff
from pipelines.recipes import recipe_params
from tests.support.trainer_runs import REPO
from trainers.llm.__main__ import main as llm_main
from trainers.vlm.__main__ import main as vlm_main

TRAINERS = {"llm": (llm_main, "qwen2.5-0.5b"), "vlm": (vlm_main, "siglip-so400m-qwen2.5-1.5b")}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR", "LIFTOFF_GIT_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def printed(capsys, main, *argv: str) -> dict:
    assert main([*argv, "--print-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ")  # how to use it, as a comment
    return yaml.safe_load(out)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_printed_config_read_back_is_the_same_config(capsys, tmp_path, trainer):
    main, preset = TRAINERS[trainer]
    first = printed(capsys, main, "--preset", preset, "--set", "optim.lr=1e-4", "--lora")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(first))
    again = printed(capsys, main, "--config", "r.yaml")
    assert again == first and first["preset"] == preset and first["optim"]["lr"] == 1e-4
    assert first["lora"]["enabled"] is True


def test_flags_and_set_win_over_the_recipe_and_the_recipe_over_the_preset(capsys, tmp_path):
    (tmp_path / "r.yaml").write_text(
        "preset: debug\noptim.lr: 5.0e-3\ntrain: {max_steps: 70, seed: 3}\noutput_dir: out/m\n"
    )
    cfg = printed(
        capsys, llm_main, "--config", "r.yaml", "--max-steps", "9", "--set", "train.seed=4"
    )
    assert (cfg["optim"]["lr"], cfg["train"]["max_steps"], cfg["train"]["seed"]) == (5e-3, 9, 4)
    assert cfg["output_dir"] == "out/m"  # the recipe's, over the built-in ./outputs/model
    assert cfg["model"]["num_layers"] == 4  # the rest from the debug preset
    cfg = printed(capsys, llm_main, "--config", "r.yaml", "--output-dir", "flag/m")
    assert cfg["output_dir"] == "flag/m"


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            "optim:\n  lrr: 1\n",
            "r.yaml: unknown config field 'optim.lrr'; did you mean 'optim.lr'?",
        ),
        ("optim: 3\n", "r.yaml: optim is a section"),
        ("- a\n- b\n", "r.yaml: expected config fields"),
        ("train: {max_steps: many}\n", "train.max_steps='many' is invalid"),
        ("a: [\n", "r.yaml: not YAML"),
    ],
)
def test_a_bad_recipe_is_one_line_exit_2(capsys, tmp_path, recipe, message):
    (tmp_path / "r.yaml").write_text(recipe)
    assert llm_main(["--config", "r.yaml", "--print-config"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: --config r.yaml: ")
    assert message in err

    code = liftoff(["run", "llm-finetune", "--config", "r.yaml"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_missing_recipe_is_named(capsys):
    assert llm_main(["--config", "nowhere.yaml"]) == 2
    assert capsys.readouterr().err == "error: --config nowhere.yaml: no such file\n"


def test_a_recipe_makes_pipeline_parameters_and_overrides(tmp_path):
    (tmp_path / "data.jsonl").write_text('{"prompt": "a", "response": "b"}\n')
    (tmp_path / "r.yaml").write_text(
        yaml.safe_dump(
            {
                "preset": "debug",
                "output_dir": "ignored/model",  # the pipeline's, per run
                "checkpoint": {"dir": "ignored/ckpt", "every_steps": 25},
                "data": {"train": "data.jsonl", "seq_len": 128},
                "train": {"max_steps": 40, "seed": 7},
                "lora": {"enabled": True},
                "optim": {"lr": 2e-3},
            }
        )
    )
    params = recipe_params(get_pipeline("llm-finetune"), "r.yaml")
    assert params == {
        "preset": "debug",
        "data": "data.jsonl",
        "max_steps": 40,
        "seed": 7,
        "lora": True,
        "overrides": ["data.seq_len=128", "optim.lr=0.002", "checkpoint.every_steps=25"],
    }


def test_liftoff_flags_win_over_the_recipe(capsys, tmp_path):
    (tmp_path / "r.yaml").write_text("preset: debug\noptim: {lr: 5.0e-3}\ntrain: {max_steps: 70}\n")
    argv = ["run", "llm-finetune", "--config", "r.yaml", "--param", "max_steps=9"]
    cfg = printed(capsys, liftoff, *argv, "--set", "optim.lr=1e-3")
    assert (cfg["train"]["max_steps"], cfg["optim"]["lr"]) == (9, 1e-3)


def test_submit_sends_what_the_recipe_says(capsys, tmp_path, vertex_fake, gcs_emulator):
    (tmp_path / "r.yaml").write_text("preset: debug\noptim: {lr: 5.0e-3}\ntrain: {max_steps: 70}\n")
    code = liftoff(
        [
            *("submit", "llm-finetune", "--config", "r.yaml", "--dry-run"),
            *("--project", "p", "--region", "us-central1", "--pipeline-root", "gs://b/root"),
            *("--set", "train.seed=5"),
        ]
    )
    out, err = capsys.readouterr()
    values = json.loads(out)["pipelineJob"]["runtimeConfig"]["parameterValues"]
    assert (code, err) == (0, "")
    assert values["max_steps"] == 70 and values["overrides"] == ["optim.lr=0.005", "train.seed=5"]


@pytest.mark.parametrize(
    ("main", "path"),
    [(llm_main, "examples/llm/recipe.yaml"), (vlm_main, "examples/vlm/recipe.yaml")],
)
def test_the_example_recipes_resolve(capsys, main, path):
    recipe = yaml.safe_load((REPO / path).read_text())
    cfg = printed(capsys, main, "--config", str(REPO / path))
    assert cfg["train"]["max_steps"] == recipe["train"]["max_steps"]
    assert cfg["preset"] == recipe["preset"]
