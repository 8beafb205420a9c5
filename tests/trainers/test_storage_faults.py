"""Storage that fails: a fault-injecting proxy (tests/support/gcs_faults.py) in front of the GCS
emulator answers chosen requests with 429/5xx, drops them, loses storage's answer or cuts it
short. Records read through it are all there, checkpoints and model directories written
through it are whole, a save cut off by an outage commits nothing, and storage that stays
down is one line after LIFTOFF_STORAGE_TIMEOUT_S (issue 15: a 203-line traceback after 46 s).

Run: `.venv/bin/pytest -q tests/trainers/test_storage_faults.py`. Each injected fault costs
the GCS client's own first backoff (1-2 s), so each case injects only a few.
"""

from __future__ import annotations

import json
import os

import fsspec
import pytest
import torch

from tests.support.gcs_faults import KINDS, FaultProxy
from tests.support.trainer_runs import TINY, free_port
from trainers.common import checkpoint, storage
from trainers.common.distributed import Dist
from trainers.common.records import read_records
from trainers.llm.__main__ import main as llm_main

RECORDS = [{"prompt": f"What is {i} + 1?", "response": str(i + 1)} for i in range(200)]


@pytest.fixture
def proxy(gcs_emulator, gcs_bucket, monkeypatch):
    """The proxy in front of the emulator, every GCS client pointed at it; a bucket made
    before it. Storage gives up after 1 s of being unavailable."""
    monkeypatch.setenv(storage.TIMEOUT_ENV, "1")
    with FaultProxy(upstream=gcs_emulator).serving() as serving:
        yield serving


def _put(uri: str, data: bytes) -> None:
    with fsspec.open(uri, "wb") as f:
        f.write(data)


def test_records_survive_transient_faults(proxy, gcs_bucket, monkeypatch):
    monkeypatch.setenv(storage.TIMEOUT_ENV, "30")
    uri = f"gs://{gcs_bucket}/data/train.jsonl"
    _put(uri, "".join(json.dumps(r) + "\n" for r in RECORDS).encode())
    proxy.fail(every=3, kinds=("short-body", "429"))
    records, skipped = read_records(uri, validate=lambda r: None)
    assert records == RECORDS and skipped == 0
    assert {kind for _, _, kind in proxy.faults} == {"short-body", "429"}  # guard


def _tiny_state(step: int) -> tuple[dict, dict]:
    torch.manual_seed(step)
    model = {"w": torch.randn(64, 32), "b": torch.randn(32)}
    return {"model": model, "step": step}, {"rng": checkpoint.capture_rng()}


def test_checkpoints_and_models_written_through_faults_are_whole(
    proxy, gcs_bucket, monkeypatch, tmp_path
):
    monkeypatch.setenv(storage.TIMEOUT_ENV, "30")
    root = f"gs://{gcs_bucket}/ckpt"
    writes = ("POST", "PUT", "DELETE")
    proxy.fail(every=2, kinds=("lost-reply", "drop"), methods=writes)  # 503/429: below
    checkpoint.save(root, 2, *_tiny_state(2), dist=Dist(), keep_last=2)
    model = {"config.json": b'{"a": 1}', "model.safetensors": os.urandom(300_000)}
    for name, data in model.items():
        (tmp_path / name).write_bytes(data)
    storage.upload_dir(str(tmp_path), f"gs://{gcs_bucket}/model")
    proxy.heal()

    assert checkpoint.committed_steps(root) == [2]
    shared, _ = checkpoint.load(checkpoint.step_dir(root, 2), rank=0)
    assert torch.equal(shared["model"]["w"], _tiny_state(2)[0]["model"]["w"])
    for name, data in model.items():
        assert storage.read_bytes(f"gs://{gcs_bucket}/model/{name}") == data
    assert {kind for _, _, kind in proxy.faults} == {"lost-reply", "drop"}


# A save of step 4 after step 2's: requests 1-3 look for a stale step-4, 4 uploads the rank
# file, 5-6 check it, 7 uploads the state, 8-10 check it, 11 writes the marker.
@pytest.mark.parametrize("after", [6, 10], ids=["before the state", "before the marker"])
def test_an_outage_during_a_save_commits_nothing_torn(proxy, gcs_bucket, after):
    root = f"gs://{gcs_bucket}/ckpt"
    checkpoint.save(root, 2, *_tiny_state(2), dist=Dist(), keep_last=2)
    proxy.down(after=after)
    with pytest.raises(storage.StorageError) as failed:
        checkpoint.save(root, 4, *_tiny_state(4), dist=Dist(), keep_last=2)
    assert "\n" not in str(failed.value) and f"{storage.TIMEOUT_ENV}=1" in str(failed.value)
    proxy.heal()

    assert proxy.faults[0][0] == "POST"  # guard: the outage met an upload
    assert checkpoint.committed_steps(root) == [2]  # step 4 never committed
    assert checkpoint.load(checkpoint.latest_committed(root), rank=0)[0]["step"] == 2


def test_every_fault_kind_is_injected_as_described(proxy, gcs_bucket):
    """Guard on the proxy itself: each kind reaches the client as an error (or a short body)."""
    uri = f"gs://{gcs_bucket}/x.txt"
    _put(uri, b"abc" * 1000)
    fs = fsspec.filesystem("gs", skip_instance_cache=True)
    for kind in KINDS:
        proxy.fail(every=1, kinds=(kind,))
        with pytest.raises(Exception):  # noqa: B017 - whatever the client makes of it
            fs.cat_file(f"{gcs_bucket}/x.txt", timeout=0.2)
        proxy.heal()
    assert {k for _, _, k in proxy.faults} == set(KINDS)


def test_unreachable_storage_is_one_line(gcs_emulator, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nobody
    monkeypatch.setenv(storage.TIMEOUT_ENV, "1")
    fsspec.get_filesystem_class("gs").clear_instance_cache()
    out = ["--output-dir", str(tmp_path / "model"), "--checkpoint-dir", str(tmp_path / "c")]
    try:
        code = llm_main([*TINY, *out, "--data", "gs://bucket/train.jsonl"])
    finally:
        fsspec.get_filesystem_class("gs").clear_instance_cache()
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: storage: cannot check gs://bucket/train.jsonl")
    assert "LIFTOFF_STORAGE_TIMEOUT_S=1" in lines[0]
