"""One-line errors for what a trainer is pointed at and cannot use (issue 15): a model id that
does not exist (offline: not in the cache either), a directory that is not a model, a
`--wandb-secret` that is not a secret's name (refused before anything starts, never shown).
Each is exit 2 with one `error:` line naming the setting, and no traceback. (Storage that
cannot be reached: tests/trainers/test_storage_faults.py.)

Run: `.venv/bin/pytest -q tests/trainers/test_load_errors.py` (in-process trainer runs).
"""

from __future__ import annotations

import pytest

from tests.support.trainer_runs import TINY, TINY_VLM
from trainers.llm.__main__ import main as llm_main
from trainers.vlm.__main__ import main as vlm_main

API_KEY = "0123456789abcdef" * 2 + "feedbeef"  # what a user might pass by mistake


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-3000:]
    assert "Traceback" not in captured.out + captured.err
    return lines[0]


@pytest.fixture
def not_a_model(tmp_path):
    directory = tmp_path / "notes"
    directory.mkdir()
    (directory / "README.txt").write_text("not a model\n")
    return str(directory)


def _llm(tmp_path, *settings: str) -> int:
    out = ["--output-dir", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "c")]
    return llm_main([*TINY, *out, *(a for s in settings for a in ("--set", s))])


@pytest.mark.parametrize("tokenizer", ["", "trained"], ids=["its tokenizer", "its weights"])
def test_a_model_id_that_does_not_exist(tmp_path, capsys, tokenizer):
    source = "no-such-org/no-such-model"
    assert _llm(tmp_path, f"model.source={source}", f"model.tokenizer={tokenizer}") == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: model.source={source!r}: cannot load a model from it (")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("tokenizer", ["", "trained"], ids=["its tokenizer", "its weights"])
def test_a_directory_that_is_not_a_model(tmp_path, capsys, not_a_model, tokenizer):
    assert _llm(tmp_path, f"model.source={not_a_model}", f"model.tokenizer={tokenizer}") == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: model.source={not_a_model!r} is a directory without ")
    assert line.endswith(": not a model")


def test_a_directory_that_is_not_there(tmp_path, capsys):
    missing = str(tmp_path / "gone")
    assert _llm(tmp_path, f"model.source={missing}", "model.tokenizer=trained") == 2
    assert _error_line(capsys) == f"error: model.source={missing!r}: no such directory"


def test_a_vision_tower_that_is_not_a_model(tmp_path, capsys, not_a_model):
    out = ["--output-dir", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "c")]
    assert vlm_main([*TINY_VLM, *out, "--set", f"vision.source={not_a_model}"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: vision.source={not_a_model!r} is a directory without config")


@pytest.mark.parametrize("wandb", ["false", "true"], ids=["W&B off", "W&B on"])
@pytest.mark.parametrize("secret", [API_KEY, "wandb-api-key", "projects/p/secrets/k"])
def test_a_malformed_wandb_secret_is_refused_at_once_and_never_shown(
    tmp_path, capsys, secret_manager, secret, wandb
):
    out = ["--output-dir", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "c")]
    flags = ["--set", f"wandb.enabled={wandb}", "--wandb-secret", secret]
    assert llm_main([*TINY, *out, *flags]) == 2
    line = _error_line(capsys)
    assert line.startswith("error: --wandb-secret: not a Secret Manager version name")
    assert secret not in line
    assert secret_manager.requests == [] and not (tmp_path / "m").exists()
