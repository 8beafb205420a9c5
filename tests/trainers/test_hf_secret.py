"""Gated models: `--hf-secret` names a Secret Manager version holding a Hugging Face token; the
trainer reads it at start with the job's credentials, before the torchrun relaunch, into its own
environment (HF_TOKEN) only. The value is never an argument, a log line or a spec entry.

.venv/bin/python -m pytest -q tests/trainers/test_hf_secret.py
"""

import os

import pytest

from trainers.common import entrypoint
from trainers.llm.__main__ import parser
from trainers.llm.presets import get_preset

SECRET = "projects/p/secrets/hf-token/versions/3"
TOKEN = "hf_7e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b"


@pytest.fixture
def trainer_env(monkeypatch):
    for name in ("HF_TOKEN", "LIFTOFF_NPROC_PER_NODE", "LIFTOFF_GPUS_PER_NODE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def run(argv: list[str]) -> tuple[int, list]:
    """The trainer's entrypoint with a train step that records what it finds."""
    seen = []

    def train(cfg, *, callbacks=()):
        seen.append(os.environ.get("HF_TOKEN"))

    code = entrypoint.run("trainers.llm", argv, parser=parser(), get_preset=get_preset, train=train)
    return code, seen


def test_the_trainer_reads_the_token_at_start_and_shows_it_nowhere(
    trainer_env, secret_manager, capfd
):
    secret_manager.add(SECRET, TOKEN + "\n")

    code, seen = run(["--preset", "debug", "--hf-secret", SECRET])

    assert (code, seen) == (0, [TOKEN])
    assert [r.path for r in secret_manager.requests] == [f"/v1/{SECRET}:access"]
    out, err = capfd.readouterr()
    assert TOKEN not in out + err


def test_no_secret_no_request(trainer_env, secret_manager):
    assert run(["--preset", "debug"]) == (0, [None])
    assert secret_manager.requests == []


def test_a_malformed_secret_name_is_one_line_exit_2(trainer_env, secret_manager, capsys):
    code, seen = run(["--preset", "debug", "--hf-secret", "hf-token"])

    assert (code, seen) == (2, [])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--hf-secret" in err
    assert "hf-token" not in err  # never shown: it may be the token itself
    assert secret_manager.requests == []
