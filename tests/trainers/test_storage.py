"""trainers.common.storage against local directories and the in-memory GCS emulator.

Run: `.venv/bin/pytest -q tests/trainers/test_storage.py`. Each behaviour is checked on a
local tmp dir and on `gs://` (fixture `gcs_bucket` from tests/support/gcs_emulator.py).
"""

from __future__ import annotations

import os
import socket

import fsspec
import pytest

from trainers.common import storage

# Nested tree with binary and empty files, and a name sharing a prefix with its sibling.
TREE = {
    "config.json": b'{"a": 1}\n',
    "weights.bin": bytes(range(256)) * 4,
    "empty.txt": b"",
    "sub/tokenizer.json": '{"é": 2}'.encode(),
    "sub/deeper/notes.txt": b"line 1\nline 2\n",
    "sub2/x.txt": b"not under sub/",
}

no_fuse_mount = pytest.mark.skipif(os.path.isdir("/gcs"), reason="a real /gcs mount exists")


def _write_tree(root: str) -> None:
    for rel, data in TREE.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _read_tree(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return out


@pytest.fixture(params=["local", "gcs"])
def base(request, tmp_path) -> str:
    """A writable, empty root: a local directory or a fresh emulator bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    return f"gs://{request.getfixturevalue('gcs_bucket')}"


def test_write_read_text_roundtrip(base):
    uri = storage.join(base, "runs", "r1", "result.json")
    storage.write_text(uri, '{"loss": 0.5, "note": "ünïcode"}')
    assert storage.read_text(uri) == '{"loss": 0.5, "note": "ünïcode"}'
    storage.write_text(uri, "overwritten")
    assert storage.read_text(uri) == "overwritten"


def test_write_text_lands_where_fsspec_expects(gcs_bucket):
    storage.write_text(f"gs://{gcs_bucket}/a/b.txt", "hello")
    with fsspec.open(f"gs://{gcs_bucket}/a/b.txt", "rb") as f:
        assert f.read() == b"hello"


def test_open_uri_binary(base):
    uri = storage.join(base, "data.bin")
    with storage.open_uri(uri, "wb") as f:
        f.write(b"\x00\x01\xff" * 1000)
    with storage.open_uri(uri) as f:
        assert f.read() == b"\x00\x01\xff" * 1000


def test_exists(base):
    uri = storage.join(base, "dir", "f.txt")
    assert not storage.exists(uri)
    storage.write_text(uri, "x")
    assert storage.exists(uri)
    assert storage.exists(storage.join(base, "dir"))  # a prefix with objects under it
    assert not storage.exists(storage.join(base, "dir", "g.txt"))


def test_list_names(base):
    assert storage.list_names(storage.join(base, "missing")) == []
    for rel in ["ckpt/step-2/model.bin", "ckpt/step-10/model.bin", "ckpt/latest.txt"]:
        storage.write_text(storage.join(base, rel), rel)
    assert storage.list_names(storage.join(base, "ckpt")) == ["latest.txt", "step-10", "step-2"]
    assert storage.list_names(storage.join(base, "ckpt", "step-2")) == ["model.bin"]


def test_upload_download_dir_roundtrip(base, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write_tree(str(src))
    remote = storage.join(base, "models", "m1")
    storage.upload_dir(str(src), remote)
    # A sibling whose name shares the prefix must not leak into the download.
    storage.write_text(storage.join(base, "models", "m1-other", "stray.txt"), "stray")

    assert storage.list_names(remote) == ["config.json", "empty.txt", "sub", "sub2", "weights.bin"]
    assert storage.download_dir(remote, str(dst)) == str(dst)
    assert _read_tree(str(dst)) == TREE


def test_remove_tree(base):
    for rel in ["out/a.txt", "out/sub/b.txt", "keep/c.txt"]:
        storage.write_text(storage.join(base, rel), rel)
    storage.remove_tree(storage.join(base, "out"))
    assert not storage.exists(storage.join(base, "out", "a.txt"))
    assert not storage.exists(storage.join(base, "out", "sub", "b.txt"))
    assert storage.list_names(storage.join(base, "out")) == []
    assert storage.read_text(storage.join(base, "keep", "c.txt")) == "keep/c.txt"
    storage.remove_tree(storage.join(base, "out"))  # removing what is gone is a no-op


@no_fuse_mount
def test_normalize_without_fuse_mount():
    assert storage.normalize("/gcs/b/x") == "gs://b/x"
    assert storage.normalize("/gcs/b/dir/f.txt") == "gs://b/dir/f.txt"
    assert storage.is_remote("/gcs/b/x")
    assert storage.join("/gcs/b", "x", "y") == "gs://b/x/y"


def test_normalize_leaves_other_paths(tmp_path, monkeypatch):
    assert storage.normalize("gs://b/x") == "gs://b/x"
    assert storage.normalize("/tmp/gcs/b") == "/tmp/gcs/b"
    assert not storage.is_remote(str(tmp_path))
    # Inside a Vertex job the mount exists and `/gcs/...` is read as a local path.
    mount = str(tmp_path) + "/"
    monkeypatch.setattr(storage, "FUSE_ROOT", mount)
    assert storage.normalize(mount + "b/x") == mount + "b/x"
    assert not storage.is_remote(mount + "b/x")


@no_fuse_mount
def test_fuse_path_goes_through_gcs_api(gcs_bucket, tmp_path):
    fuse = f"/gcs/{gcs_bucket}"
    storage.write_text(f"{fuse}/run/metrics.json", '{"acc": 1.0}')
    assert storage.read_text(f"gs://{gcs_bucket}/run/metrics.json") == '{"acc": 1.0}'
    assert storage.exists(f"{fuse}/run/metrics.json")
    assert storage.list_names(f"{fuse}/run") == ["metrics.json"]

    _write_tree(str(tmp_path / "src"))
    storage.upload_dir(str(tmp_path / "src"), f"{fuse}/model")
    storage.download_dir(f"gs://{gcs_bucket}/model", str(tmp_path / "dst"))
    assert _read_tree(str(tmp_path / "dst")) == TREE
    storage.remove_tree(f"{fuse}/model")
    assert storage.list_names(f"gs://{gcs_bucket}") == ["run"]
    assert not os.path.exists("/gcs")  # nothing was written to a local /gcs by mistake


def test_sees_files_written_by_another_client(base):
    # Another process or job writing the same prefix, seen through a separate fsspec instance.
    step2 = storage.join(base, "ckpt", "step-2.txt")
    other, other_path = fsspec.core.url_to_fs(step2, skip_instance_cache=True)
    storage.write_text(storage.join(base, "ckpt", "step-1.txt"), "1")
    assert storage.list_names(storage.join(base, "ckpt")) == ["step-1.txt"]
    assert not storage.exists(step2)

    other.pipe_file(other_path, b"2")
    assert storage.list_names(storage.join(base, "ckpt")) == ["step-1.txt", "step-2.txt"]
    assert storage.exists(step2)


def test_upload_dir_to_file_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a `file:` directory would appear here if the URI were used
    _write_tree(str(tmp_path / "src"))
    storage.upload_dir(str(tmp_path / "src"), f"file://{tmp_path}/out")
    assert _read_tree(str(tmp_path / "out")) == TREE
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]


def test_emulator_session_stays_on_loopback(gcs_emulator):
    assert os.environ["STORAGE_EMULATOR_HOST"] == gcs_emulator
    with pytest.raises(ConnectionRefusedError, match="loopback"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET: never routable
