"""Structured logs: plain lines on this machine, JSON lines with severity and run/step/rank labels
on Vertex AI (what Cloud Logging turns into filterable entries), from the trainers and the
components alike.

.venv/bin/python -m pytest -q tests/trainers/test_logs.py
"""

import json
import os

import pytest

from trainers.common.logs import LABELS, format_line, label_run, log, on_vertex

VERTEX = {"CLOUD_ML_JOB_ID": "3003", "LIFTOFF_RUN": "llm-finetune-20260105", "RANK": "1"}


@pytest.fixture
def clean_env(monkeypatch):
    """No Vertex variables; what the code under test sets in os.environ is undone after."""
    names = ["CLOUD_ML_JOB_ID", "LIFTOFF_RUN", "LIFTOFF_STEP", "RANK", "WANDB_RUN_GROUP"]
    for name in [*names, *(n for n in os.environ if n.startswith("AIP_"))]:
        monkeypatch.setenv(name, "")  # recorded, so teardown restores (or removes) it
        monkeypatch.delenv(name)
    return monkeypatch


def test_on_vertex_is_any_aip_variable_or_a_job_id():
    assert not on_vertex({"HOME": "/root", "AIPS": "x"})
    assert on_vertex({"AIP_MODEL_DIR": "gs://b/model"})
    assert on_vertex({"CLOUD_ML_JOB_ID": "3003"})


def test_a_line_is_plain_here_and_a_structured_entry_on_vertex():
    assert format_line("step 2/2 loss 5.3", environ={}) == "step 2/2 loss 5.3"
    entry = json.loads(
        format_line("error: data.jsonl:17: missing field", severity="ERROR", environ=VERTEX)
    )
    assert entry == {
        "severity": "ERROR",
        "message": "error: data.jsonl:17: missing field",
        LABELS: {"liftoff_run": "llm-finetune-20260105", "rank": "1"},
    }
    multi = json.loads(format_line("Traceback:\n  line 1", environ={"AIP_X": "1"}))
    assert multi["message"] == "Traceback:\n  line 1"  # one entry, not one per line
    assert multi[LABELS] == {"rank": "0"}


def test_warnings_and_errors_go_to_stderr_in_one_line_each(clean_env, capsys):
    clean_env.setenv("AIP_MODEL_DIR", "gs://b/model")
    label_run(run="llm-finetune-20260105", step="train")
    log("checkpoint committed: gs://b/ckpt/step-00000002")
    log("preempted at step 2: checkpoint saved", severity="WARNING")
    out, err = capsys.readouterr()
    assert json.loads(out)["severity"] == "INFO"
    (line,) = err.splitlines()
    assert json.loads(line)[LABELS] == {
        "liftoff_run": "llm-finetune-20260105",
        "liftoff_step": "train",
        "rank": "0",
    }


def test_a_trainers_user_error_is_an_error_entry_on_vertex(clean_env, capsys):
    from tests.support.trainer_runs import TINY
    from trainers.llm.__main__ import main

    clean_env.setenv("CLOUD_ML_JOB_ID", "3003")
    clean_env.setenv("LIFTOFF_STEP", "train")
    assert main([*TINY, "--set", "optim.nope=1"]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    entry = json.loads(line)
    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("error: ") and "no config field 'optim.nope'" in line
    assert entry[LABELS] == {"liftoff_step": "train", "rank": "0"}


def test_a_component_labels_its_entries_with_the_run_and_step(clean_env, capsys):
    from components.common import use_run_group

    clean_env.setenv("CLOUD_ML_JOB_ID", "2001")
    use_run_group("llm-finetune-20260105", "", step="prepare_data")
    log("prepare_data: train 96 records")
    entry = json.loads(capsys.readouterr().out)
    assert entry[LABELS] == {
        "liftoff_run": "llm-finetune-20260105",
        "liftoff_step": "prepare_data",
        "rank": "0",
    }
