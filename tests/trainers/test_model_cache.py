"""Local copies of gs:// model directories (trainers.common.model_cache, behind
`trainers.lm.model.local_source`), against the GCS emulator: keyed by content, so a rewritten
model serves its new weights; complete or absent, so a half-finished download is never used;
safe when several callers fetch the same model at once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from trainers.common import model_cache, storage
from trainers.lm.model import local_source


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(model_cache.CACHE_ENV, str(root))
    return root


def _model(root: str, weights: bytes) -> None:
    storage.write_text(f"{root}/config.json", '{"model_type": "llama"}')
    with storage.open_uri(f"{root}/model.safetensors", "wb") as f:
        f.write(weights)


def _read(local: str, name: str = "model.safetensors") -> bytes:
    with open(os.path.join(local, name), "rb") as f:
        return f.read()


def test_a_copy_is_reused_until_the_model_is_rewritten(gcs_bucket, cache):
    uri = f"gs://{gcs_bucket}/runs/7/model"
    _model(uri, b"weights-1")
    first = local_source(uri)
    assert _read(first) == b"weights-1" and first.startswith(str(cache))
    (cache / os.path.basename(first) / "sentinel").write_text("")  # marks this very copy
    assert local_source(uri) == first  # reused, not fetched again

    _model(uri, b"weights-2")  # the same size: only the generation tells them apart
    second = local_source(uri)
    assert second != first and _read(second) == b"weights-2"
    assert not os.path.exists(os.path.join(second, "sentinel"))


def test_a_half_finished_download_is_never_used(gcs_bucket, cache):
    uri = f"gs://{gcs_bucket}/model"
    _model(uri, b"weights")
    # What a killed process leaves behind: a partial directory with config.json in it.
    cache.mkdir()
    (cache / ".partial-killed").mkdir()
    (cache / ".partial-killed" / "config.json").write_text("{}")
    # A download that fails half-way: the object "model.safetensors/x" cannot be written
    # below the file model.safetensors, fetched just before it.
    storage.write_text(f"{uri}/model.safetensors/x", "clash")
    with pytest.raises(OSError):
        local_source(uri)
    assert sorted(os.listdir(cache)) == [".partial-killed"]  # no copy, no new leftovers

    storage.filesystem(uri)[0].rm(f"{gcs_bucket}/model/model.safetensors/x")
    local = local_source(uri)
    assert _read(local) == b"weights" and _read(local, "config.json").startswith(b"{")


def test_concurrent_fetches_share_one_complete_copy(gcs_bucket, cache):
    uri = f"gs://{gcs_bucket}/shared/model"
    _model(uri, os.urandom(256 * 1024))
    with ThreadPoolExecutor(4) as pool:
        copies = list(pool.map(lambda _: model_cache.cached_copy(uri), range(4)))
    assert len(set(copies)) == 1
    assert _read(copies[0]) == storage.filesystem(uri)[0].cat(
        f"{gcs_bucket}/shared/model/model.safetensors"
    )
    assert os.listdir(cache) == [os.path.basename(copies[0])]  # every partial copy is gone


def test_local_and_hub_sources_are_used_as_they_are(tmp_path, cache):
    assert local_source(str(tmp_path)) == str(tmp_path)
    assert local_source("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert not cache.exists()
