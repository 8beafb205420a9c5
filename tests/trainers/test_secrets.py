"""Secret Manager reads over the wire (loopback fake), and the W&B key they feed."""

from __future__ import annotations

import logging
import os

import pytest

from tests.support.wandb_records import isolate, read_run
from trainers.common.config import ConfigError
from trainers.common.secrets import read_secret
from trainers.common.tracking import start_tracker

RESOURCE = "projects/proj-1/secrets/wandb-api-key/versions/latest"
API_KEY = "0123456789abcdef" * 2 + "feedbeef"  # shaped like a real 40-character W&B key


def test_read_secret_gets_the_version_over_rest(secret_manager):
    secret_manager.add(RESOURCE, "s3cr3t ✓")
    assert read_secret(RESOURCE) == "s3cr3t ✓"
    [request] = secret_manager.requests
    assert (request.method, request.path) == ("GET", f"/v1/{RESOURCE}:access")
    assert "authorization" not in request.headers  # anonymous: nothing real on plain HTTP


@pytest.mark.parametrize(
    "bad",
    [
        "wandb-api-key",
        "projects/p/secrets/s",
        "projects/p/secrets/s/versions/",
        "projects/p/secrets/s/versions/1/extra",
        "projects/p/secrets/s/versions/1 ",
        "/projects/p/secrets/s/versions/1",
        "projects/p/locations/us/secrets/s/versions/1",
    ],
)
def test_malformed_resource_is_refused_before_any_request(bad, secret_manager):
    with pytest.raises(ValueError) as raised:
        read_secret(bad)
    message = str(raised.value)
    assert bad.strip() not in message  # never shown: it may be the key itself
    assert "projects/PROJECT/secrets/NAME/versions/VERSION" in message
    assert "\n" not in message
    assert secret_manager.requests == []


def test_unknown_secret_names_the_resource(secret_manager):
    missing = "projects/proj-1/secrets/nope/versions/3"
    # The user's to fix: a one-line ConfigError (exit 2), not a failure with a traceback.
    with pytest.raises(ConfigError, match=f"cannot read secret {missing}: .*not found"):
        read_secret(missing)
    assert [r.path for r in secret_manager.requests] == [f"/v1/{missing}:access"]


def test_corrupted_payload_fails_its_checksum(secret_manager, monkeypatch):
    secret_manager.add(RESOURCE, "value")
    status, body = secret_manager.respond("GET", f"/v1/{RESOURCE}:access")
    body["payload"]["dataCrc32c"] = "1"
    monkeypatch.setattr(secret_manager, "respond", lambda method, path: (status, body))
    with pytest.raises(RuntimeError, match="CRC32C"):
        read_secret(RESOURCE)


def test_start_tracker_puts_the_key_in_the_environment_and_nowhere_else(
    secret_manager, tmp_path, monkeypatch, capfd, caplog
):
    isolate(monkeypatch, tmp_path)
    monkeypatch.delenv("WANDB_SILENT")  # let wandb say all it would say
    secret_manager.add(RESOURCE, API_KEY + "\n")  # as `gcloud secrets create --data-file=-` does
    caplog.set_level(logging.DEBUG)

    tracker = start_tracker(
        enabled=True, project="p", config={"lr": 0.1}, job_type="sft", wandb_secret=RESOURCE
    )
    tracker.log({"loss": 1.0}, step=1)
    tracker.finish()

    assert os.environ["WANDB_API_KEY"] == API_KEY
    assert [r.path for r in secret_manager.requests] == [f"/v1/{RESOURCE}:access"]
    assert read_run(tmp_path).history[0]["loss"] == 1.0  # still offline: WANDB_MODE says so
    out, err = capfd.readouterr()
    assert "wandb" in out + err and caplog.records  # the capture really saw wandb talk
    assert API_KEY not in out + err
    assert API_KEY not in caplog.text
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]
    assert leaks == []  # run file, debug logs, console log, settings
