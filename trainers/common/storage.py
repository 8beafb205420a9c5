"""Paths that may be local, `gs://bucket/...` or Vertex's `/gcs/bucket/...` FUSE mount.

    from trainers.common import storage
    with storage.open_uri("gs://b/data.jsonl", "rb") as f: ...

Paths stay `str` end to end so `gs://` survives every layer. `/gcs/...` is read through the
mount when it exists (inside a Vertex job) and through the GCS API otherwise.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from typing import IO

import fsspec

FUSE_ROOT = "/gcs/"


def normalize(uri: str) -> str:
    """Map `/gcs/b/p` to `gs://b/p` where no FUSE mount exists; leave everything else as is."""
    if uri.startswith(FUSE_ROOT) and not os.path.isdir(FUSE_ROOT):
        return "gs://" + uri[len(FUSE_ROOT) :]
    return uri


def is_remote(uri: str) -> bool:
    return "://" in normalize(uri) and not normalize(uri).startswith("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for `uri` and the path within it."""
    # No listings cache: other processes and jobs write the same buckets, and fsspec keeps
    # filesystem instances (and their cached listings) for the life of the process, so a
    # cached listing would hide their files from `exists`/`list_names` forever.
    fs, path = fsspec.core.url_to_fs(normalize(uri), use_listings_cache=False)
    return fs, path


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(normalize(base), *parts)
    return os.path.join(base, *parts)


def open_uri(uri: str, mode: str = "rb") -> IO:
    fs, path = filesystem(uri)
    if "w" in mode and not is_remote(uri):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return fs.open(path, mode)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    if not is_remote(uri):  # object stores have no directories to make
        fs.makedirs(path, exist_ok=True)


def list_names(uri: str) -> list[str]:
    """Names (not paths) of the entries directly under `uri`; empty when it does not exist."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def remove_tree(uri: str) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def read_text(uri: str) -> str:
    with open_uri(uri, "rb") as f:
        return f.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    with open_uri(uri, "wb") as f:
        f.write(text.encode("utf-8"))


def upload_dir(local_dir: str, uri: str) -> None:
    """Copy the files of `local_dir` to `uri` (a local directory or a bucket prefix)."""
    fs, path = filesystem(uri)
    if not is_remote(uri):  # `path`, not `uri`: a `file://` URI is not a directory name
        shutil.copytree(local_dir, path, dirs_exist_ok=True)
        return
    for root, _, files in os.walk(local_dir):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), local_dir)
            fs.put_file(os.path.join(root, name), posixpath.join(path, rel.replace(os.sep, "/")))


def download_dir(uri: str, local_dir: str) -> str:
    """Copy everything under `uri` into `local_dir` and return `local_dir`."""
    fs, path = filesystem(uri)
    os.makedirs(local_dir, exist_ok=True)
    prefix = path.rstrip("/") + "/"
    for remote in fs.find(path):
        target = os.path.join(local_dir, *remote[len(prefix) :].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(remote, target)
    return local_dir
