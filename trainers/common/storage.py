"""Paths that may be local, `gs://bucket/...` or Vertex's `/gcs/bucket/...` FUSE mount.

    from trainers.common import storage
    data = storage.read_bytes("gs://b/data.jsonl")
    written = storage.put_file("/tmp/state.safetensors", "gs://b/ckpt/state.safetensors")
    written.size, written.crc32c                   # what is stored, checked against the store

Paths stay `str` end to end so `gs://` survives every layer. `/gcs/...` is read through the
mount when it exists (inside a Vertex job) and through the GCS API otherwise.

Remote storage fails now and then: 429s, 5xx answers, dropped connections. Every operation here
(but `open_uri`'s streams) is retried with backoff on such failures until storage has been
unavailable for `LIFTOFF_STORAGE_TIMEOUT_S` seconds (default 120), plus a second per 8 MiB for
a transfer (which may take its time); then it raises a one-line `StorageError`. Uploads
are checked against the size and CRC32C the store reports, so a file cut short on the way is
sent again, never kept. Local writes that must survive a crash (`durable=True`) are fsynced.
"""

from __future__ import annotations

import base64
import os
import posixpath
import random
import shutil
import time
from dataclasses import dataclass
from typing import IO, Any

import fsspec

FUSE_ROOT = "/gcs/"
TIMEOUT_ENV = "LIFTOFF_STORAGE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 120.0
MIN_RATE = 8 * 2**20  # bytes/s: slower transfers than this count as failed attempts
_CHUNK = 8 * 2**20
_JITTER = random.Random()  # not the global RNG: a retry must not move a run's random streams


class StorageError(RuntimeError):
    """Storage stayed unavailable past LIFTOFF_STORAGE_TIMEOUT_S: one line naming what and
    where, for the trainer to print without a traceback."""


@dataclass(frozen=True)
class Written:
    """A file as stored: its size in bytes and CRC32C (hex), as a commit marker records it."""

    size: int
    crc32c: str


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


def local_path(uri: str) -> str | None:
    """The path on this machine that `uri` names, or None for remote storage."""
    return None if is_remote(uri) else filesystem(uri)[1]


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(normalize(base), *parts)
    return os.path.join(base, *parts)


def open_uri(uri: str, mode: str = "rb") -> IO:
    """A stream (not retried as a whole: prefer read_bytes/write_bytes where they fit)."""
    fs, path = filesystem(uri)
    if "w" in mode and not is_remote(uri):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return fs.open(path, mode)


def exists(uri: str) -> bool:
    return _call("check", uri, "exists")


def makedirs(uri: str) -> None:
    if not is_remote(uri):  # object stores have no directories to make
        os.makedirs(filesystem(uri)[1], exist_ok=True)


def list_names(uri: str) -> list[str]:
    """Names (not paths) of the entries directly under `uri`; empty when it does not exist."""
    if not exists(uri):
        return []
    paths = _call("list", uri, "ls", detail=False)
    return sorted(posixpath.basename(p.rstrip("/")) for p in paths)


def sizes(uri: str) -> dict[str, int]:
    """The files directly under `uri`, by name, with their sizes in bytes."""
    entries = _call("list", uri, "ls", detail=True)
    return {
        posixpath.basename(e["name"].rstrip("/")): int(e.get("size") or 0)
        for e in entries
        if e.get("type") == "file"
    }


def remove_tree(uri: str) -> None:
    if exists(uri):
        _call("remove", uri, "rm", recursive=True)


def read_bytes(uri: str) -> bytes:
    return _call("read", uri, "cat_file", size=_size_hint(uri))


def write_bytes(uri: str, data: bytes, *, durable: bool = False) -> None:
    """Write `data` as the whole file `uri`; `durable`: on disk before this returns (a remote
    store acknowledges a write once it is durable)."""
    path = local_path(uri)
    if path is None:
        _call("write", uri, "pipe_file", data, size=len(data))
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        if durable:
            _flush_to_disk(f)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str, *, durable: bool = False) -> None:
    write_bytes(uri, text.encode("utf-8"), durable=durable)


def put_file(local: str, uri: str) -> Written:
    """Copy the local file `local` to `uri` and return what is stored there: uploads are
    checked against the store's size and CRC32C and sent again when they differ; local copies
    are fsynced."""
    written = checksum(local)
    path = local_path(uri)
    if path is not None:
        if os.path.abspath(path) != os.path.abspath(local):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            shutil.copyfile(local, path)
        sync_file(path)
        return written
    for _ in range(3):  # a torn upload is sent again; one that keeps tearing is a failure
        _call("write", uri, "put_file", local, size=written.size)
        if _stored(uri) in (written, Written(written.size, "")):
            return written
    raise StorageError(f"storage: {uri} does not hold what was uploaded after 3 attempts")


def get_file(uri: str, local: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    path = local_path(uri)
    if path is not None:
        shutil.copyfile(path, local)
        return
    _call("read", uri, "get_file", local, size=_size_hint(uri))


def checksum(local: str) -> Written:
    """Size and CRC32C of a local file (the checksum GCS keeps for every object)."""
    import google_crc32c

    crc, size = google_crc32c.Checksum(), 0
    with open(local, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc.update(chunk)
            size += len(chunk)
    return Written(size, crc.digest().hex())


def sync_file(path: str) -> None:
    """fsync a local file, so what was written survives a crash of the machine."""
    with open(path, "rb+") as f:
        _flush_to_disk(f)


def sync_dir(uri: str) -> None:
    """fsync a local directory, so the names of the files in it survive a crash too; object
    stores (and file systems that cannot sync a directory) have nothing to do."""
    path = local_path(uri)
    if path is None:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # e.g. EINVAL on a FUSE mount: the mount syncs when the files close
        pass
    finally:
        os.close(fd)


def upload_dir(local_dir: str, uri: str) -> None:
    """Copy the files of `local_dir` to `uri` (a local directory or a bucket prefix)."""
    for root, _, files in os.walk(local_dir):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), local_dir)
            put_file(os.path.join(root, name), join(uri, *rel.split(os.sep)))


def download_dir(uri: str, local_dir: str) -> str:
    """Copy everything under `uri` into `local_dir` and return `local_dir`."""
    os.makedirs(local_dir, exist_ok=True)
    _, path = filesystem(uri)
    prefix = path.rstrip("/") + "/"
    for found in _call("list", uri, "find"):
        rel = found[len(prefix) :]
        get_file(join(uri, *rel.split("/")), os.path.join(local_dir, *rel.split("/")))
    return local_dir


def _flush_to_disk(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _stored(uri: str) -> Written:
    """Size and CRC32C of the object at `uri`, as the store reports them ("" when it keeps
    no CRC32C)."""
    info = _call("check", uri, "info")
    crc = info.get("crc32c")
    return Written(int(info["size"]), base64.b64decode(crc).hex() if crc else "")


def _size_hint(uri: str) -> int:
    """A remote object's size, which lets a long transfer take its time; 0 when unknown."""
    if not is_remote(uri):
        return 0
    return int(_call("check", uri, "info").get("size") or 0)


def timeout_s() -> float:
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)


def _call(what: str, uri: str, method: str, *args: Any, size: int = 0, **kwargs: Any) -> Any:
    """`fs.method(path, *args, **kwargs)` for `uri` (`put_file`: `fs.put_file(local, path)`);
    remote calls are retried with backoff on transient failures for `timeout_s()` seconds
    plus a second per MIN_RATE bytes of `size` (a big transfer may take its time)."""
    fs, path = filesystem(uri)
    args = (*args, path) if method == "put_file" else (path, *args)
    if not is_remote(uri):
        return getattr(fs, method)(*args, **kwargs)
    started, budget, attempts = time.monotonic(), timeout_s() + size / MIN_RATE, 0
    while True:
        attempts += 1
        left = max(0.01, started + budget - time.monotonic())
        try:
            # fsspec's `timeout` cancels the whole call, the library's own retries included.
            return getattr(fs, method)(*args, timeout=left, **kwargs)
        except Exception as err:
            waited = time.monotonic() - started
            if not _transient(err):
                raise
            if waited >= budget:
                raise StorageError(_unavailable(what, uri, err, waited, attempts)) from err
            time.sleep(min(_backoff(attempts), started + budget - time.monotonic()))


def _backoff(attempts: int) -> float:
    """Exponential with full jitter: ranks that failed together do not retry together."""
    return _JITTER.uniform(0.5, 1.0) * min(8.0, 0.25 * 2 ** (attempts - 1))


def _transient(err: BaseException) -> bool:
    """A failure that another attempt may not meet: throttling, 5xx, a lost connection, a
    timeout. Not: a missing object, a refused permission, a bad request."""
    if isinstance(err, TimeoutError | ConnectionError):  # fsspec's FSTimeoutError included
        return True
    from gcsfs.retry import is_retriable

    return is_retriable(err)


def _unavailable(what: str, uri: str, err: BaseException, waited: float, attempts: int) -> str:
    reason = (str(err).strip().splitlines() or [""])[0] or type(err).__name__
    return (
        f"storage: cannot {what} {uri}: unavailable for {waited:.0f} s over {attempts} "
        f"attempts ({reason}); {TIMEOUT_ENV}={timeout_s():g} sets how long to wait"
    )
