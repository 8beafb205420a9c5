"""Issue 10's two README sequences, as a newcomer runs them in one working directory with the
default directories: the LLM trainer twice with another lr (the second used to resume the
first's final checkpoint, train nothing and claim the new lr), and the LLM trainer after the
VLM trainer (which used to crash loading the VLM's checkpoint). Each run now has a checkpoint
directory of its own; pointed at another run's, a trainer refuses in one line naming the
difference, or starts over with --no-resume.

Run: `.venv/bin/pytest -q tests/trainers/test_resume_sequences.py` (in-process trainer runs).
"""

from __future__ import annotations

import json

from tests.support.trainer_runs import TINY, TINY_VLM
from trainers.common import checkpoint
from trainers.llm.__main__ import main as llm_main
from trainers.vlm.__main__ import main as vlm_main

BASE = [*TINY, "--set", "checkpoint.every_steps=2"]
FIRST = [*BASE, "--max-steps", "4"]
SECOND = [*BASE, "--set", "optim.lr=1e-3", "--max-steps", "3"]


def _roots(cwd) -> list:
    return sorted((cwd / "outputs" / "checkpoints").iterdir())


def _metadata(cwd) -> dict:
    return json.loads((cwd / "outputs" / "model" / "training_metadata.json").read_text())


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def test_a_second_llm_run_with_another_lr_trains_afresh(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert llm_main(FIRST) == 0
    [first_root] = _roots(tmp_path)
    assert checkpoint.committed_steps(str(first_root)) == [2, 4]
    capsys.readouterr()

    assert llm_main(SECOND) == 0
    out = capsys.readouterr().out
    assert "resumed from" not in out and "step 2/3" in out
    meta = _metadata(tmp_path)
    assert meta["steps"] == 3 and meta["config"]["optim"]["lr"] == 1e-3
    assert len(_roots(tmp_path)) == 2  # a directory of its own beside the first run's

    # Pointed at the first run's checkpoints: refused in one line, nothing trained or removed.
    assert llm_main([*SECOND, "--checkpoint-dir", str(first_root)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "optim.lr=" in line and ", 0.001 here" in line and "--no-resume" in line
    assert checkpoint.committed_steps(str(first_root)) == [2, 4]

    # --no-resume: starts over there, its checkpoints replacing the first run's.
    assert llm_main([*SECOND, "--no-resume", "--checkpoint-dir", str(first_root)]) == 0
    assert "resumed from" not in capsys.readouterr().out
    assert checkpoint.committed_steps(str(first_root)) == [2]
    marker = checkpoint.read_marker(str(checkpoint.step_dir(str(first_root), 2)))
    assert marker["fingerprint"]["config"]["optim.lr"] == 1e-3 and _metadata(tmp_path)["steps"] == 3


def test_the_llm_trainer_after_the_vlm_trainer(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert vlm_main([*TINY_VLM, "--max-steps", "2", "--set", "checkpoint.every_steps=2"]) == 0
    [vlm_root] = _roots(tmp_path)
    assert vlm_root.name.startswith("vlm-") and checkpoint.committed_steps(str(vlm_root)) == [2]
    capsys.readouterr()

    assert llm_main([*BASE, "--max-steps", "2"]) == 0
    assert "resumed from" not in capsys.readouterr().out
    assert _metadata(tmp_path)["steps"] == 2 and len(_roots(tmp_path)) == 2

    assert llm_main([*BASE, "--max-steps", "2", "--checkpoint-dir", str(vlm_root)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "trainer: trainers.vlm.train.VLMTask there, trainers.llm.train.LLMTask here" in line
