"""Local copies of remote (gs://) model directories, for libraries that read local files only
(transformers, tokenizers, peft).

    local = cached_copy("gs://b/runs/7/model")   # <tmp>/liftoff-models/<name>-<content key>

A copy is keyed by content: the key hashes every object's name, size and generation (GCS's
version number, new whenever an object is written; the etag on stores without one), so a
rewritten model gets a new copy and never serves stale weights. A copy is downloaded into a
temporary directory beside the cache and renamed into place once complete and still current,
so a half-finished download (a killed process) is never used, and processes that fetch the same
model at once each download it and the first rename wins. `LIFTOFF_MODEL_CACHE` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile

from trainers.common import storage

CACHE_ENV = "LIFTOFF_MODEL_CACHE"
ATTEMPTS = 3  # downloads of a model that keeps changing underneath, before giving up


def cache_root() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(), "liftoff-models")


def cached_copy(uri: str) -> str:
    """A complete local copy of the directory at `uri`, as it is now."""
    fs, path = storage.filesystem(uri)
    for _ in range(ATTEMPTS):
        objects = listing(fs, path)
        target = os.path.join(cache_root(), f"{_slug(uri)}-{content_key(objects)}")
        if os.path.isdir(target) or _download(fs, path, objects, target):
            return target
    raise RuntimeError(f"{uri} changed during each of {ATTEMPTS} downloads; try again later")


def listing(fs, path: str) -> dict[str, dict]:
    """Every object under `path`, by its name relative to `path`."""
    found = fs.find(path, detail=True)
    if not found:
        raise FileNotFoundError(f"{path}: no such model directory")
    prefix = path.rstrip("/") + "/"
    return {name[len(prefix) :]: info for name, info in found.items() if name.startswith(prefix)}


def content_key(objects: dict[str, dict]) -> str:
    """What identifies these objects' bytes: names, sizes and generations (or etags)."""
    version = {
        name: [info.get("size"), info.get("generation") or info.get("etag") or info.get("mtime")]
        for name, info in objects.items()
    }
    blob = json.dumps(version, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _download(fs, path: str, objects: dict[str, dict], target: str) -> bool:
    """Fetch `objects` and rename them into place as `target`; False when the directory
    changed meanwhile (the copy may mix two versions, so it is dropped)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".partial-", dir=os.path.dirname(target))
    try:
        for name in objects:
            local = os.path.join(partial, *name.split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            fs.get_file(posixpath.join(path, name), local)
        if content_key(listing(fs, path)) != content_key(objects):
            return False
        try:
            os.rename(partial, target)  # atomic; fails when another process got there first
        except OSError:
            if not os.path.isdir(target):
                raise
        return True
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _slug(uri: str) -> str:
    """A readable, bounded directory name for `uri` (the key makes it unique)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", storage.normalize(uri).split("://", 1)[-1])[-80:]
