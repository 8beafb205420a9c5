"""The trainers' launch jobs: the form's schema, the job source, and the run config a submit
sends, checked against each trainer's own config before anything is sent."""

from __future__ import annotations

import importlib
import shlex

import pytest
from wandb.sdk.launch.inputs.schema import META_SCHEMA

from pipelines.cli import main
from pipelines.launch.jobs import TRAINERS, get_trainer, input_schema, job_source, run_config
from trainers.common.config import to_dict

PYTHON_TYPES = {"boolean": bool, "integer": int, "number": float, "string": str}


def _check_meta_schema(schema: dict, where: str = "") -> int:
    """What W&B Launch's META_SCHEMA allows (no jsonschema here); returns the leaves seen."""
    unknown = set(schema) - set(META_SCHEMA["properties"])
    assert not unknown, f"{where or 'schema'}: keys W&B Launch rejects: {unknown}"
    assert schema["type"] in META_SCHEMA["properties"]["type"]["enum"], where
    if schema["type"] != "object":
        return 1
    return sum(_check_meta_schema(s, f"{where}.{k}") for k, s in schema["properties"].items())


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_the_form_is_valid_and_matches_the_trainers_config(name):
    trainer = get_trainer(name)
    schema = input_schema(trainer)
    assert _check_meta_schema(schema) == len(trainer.fields) + 1  # + preset
    assert schema["properties"]["preset"]["enum"] == trainer.preset_names()
    defaults = to_dict(trainer.get_preset("debug"))
    for path in trainer.fields:
        section, field = path.split(".")
        leaf = schema["properties"][section]["properties"][field]
        assert isinstance(defaults[section][field], PYTHON_TYPES[leaf["type"]]), path
    assert schema["properties"]["optim"]["properties"]["lr"]["type"] == "number"
    assert schema["properties"]["lora"]["properties"]["enabled"]["type"] == "boolean"


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_the_job_runs_the_trainers_entrypoint_in_the_image(name):
    trainer = get_trainer(name)
    source = job_source(trainer, image="us-docker.pkg.dev/p/liftoff/trainer@sha256:ab")
    assert source["source_type"] == "image"
    assert source["source"]["entrypoint"] == ["python", "-m", trainer.module]
    assert source["source"]["image"] == "us-docker.pkg.dev/p/liftoff/trainer@sha256:ab"
    assert hasattr(importlib.import_module(f"{trainer.module}.__main__"), "main")


def test_a_submits_run_config_is_typed_by_the_trainers_config():
    sets = ["optim.lr=1e-3", "lora.enabled=true", "train.max_steps=20", "data.train=gs://b/t.jsonl"]
    assert run_config(get_trainer("llm"), preset="qwen2.5-0.5b", sets=sets) == {
        "preset": "qwen2.5-0.5b",
        "optim": {"lr": 0.001},
        "lora": {"enabled": True},
        "train": {"max_steps": 20},
        "data": {"train": "gs://b/t.jsonl"},
    }


SUBMIT = "launch submit llm --queue q --preset debug"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (SUBMIT + " --set optim.learning_rate=1", "no config field 'optim.learning_rate'"),
        (SUBMIT + " --set train.max_steps=ten", "train.max_steps='ten' is invalid"),
        (SUBMIT + " --set optim.lr=-1", "optim.lr=-1.0 is invalid"),
        ("launch submit llm --queue q --preset gpt-5", "--preset 'gpt-5' is unknown"),
        ("launch submit t5 --queue q --preset debug", "unknown trainer 't5'"),
        ("launch job create llm --image trainer:1", "--image: 'trainer:1' is not an image URI"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_is_sent(capsys, wandb_backend, argv, message):
    assert main(shlex.split(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("liftoff launch: error: ") and message in err, err
    assert err.count("\n") == 1
    assert wandb_backend.requests == []
