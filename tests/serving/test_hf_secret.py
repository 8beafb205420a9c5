"""The serving container reads a Hugging Face token (a gated base model) at start from the
Secret Manager version that LIFTOFF_HF_SECRET names (the register step puts the name, never the
value, in the model's container spec), with the server's credentials.

.venv/bin/python -m pytest -q tests/serving/test_hf_secret.py
"""

import os

import pytest
import uvicorn

from serving.__main__ import main

SECRET = "projects/p/secrets/hf-token/versions/1"
TOKEN = "hf_0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def started(monkeypatch):
    """What the server would start with: the token in its environment when uvicorn runs."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    seen = []
    # uvicorn is not under test: stand in for it to see the environment the app starts in.
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: seen.append(os.environ.get("HF_TOKEN")))
    return seen


def test_the_server_reads_the_named_secret_at_start(started, secret_manager, monkeypatch, capfd):
    secret_manager.add(SECRET, TOKEN)
    monkeypatch.setenv("LIFTOFF_HF_SECRET", SECRET)

    assert main(["--model", "gs://b/models/m"]) == 0

    assert started == [TOKEN]
    assert [r.path for r in secret_manager.requests] == [f"/v1/{SECRET}:access"]
    out, err = capfd.readouterr()
    assert TOKEN not in out + err


def test_an_unreadable_secret_stops_the_server_before_it_serves(started, secret_manager, capsys):
    # A secret that is not there is the user's to fix: one line, exit 2, nothing served.
    assert main(["--model", "gs://b/models/m", "--hf-secret", SECRET]) == 2
    assert started == []
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read secret {SECRET}") and err.count("\n") == 1


def test_no_secret_named_none_read(started, secret_manager, monkeypatch):
    monkeypatch.setenv("LIFTOFF_HF_SECRET", "")
    assert main(["--model", "gs://b/models/m"]) == 0
    assert started == [None] and secret_manager.requests == []
