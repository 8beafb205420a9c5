"""An in-process, in-memory GCS emulator so `gs://` code paths run for real in tests.

    def test_roundtrip(gcs_bucket):                # a fresh, empty bucket per test
        with fsspec.open(f"gs://{gcs_bucket}/a.txt", "w") as f:
            f.write("hi")

`gcs_emulator` (session) serves `gcp-storage-emulator` on 127.0.0.1 from a background thread
and returns its URL. While it runs, `STORAGE_EMULATOR_HOST` points gcsfs and
google-cloud-storage at it, fsspec's `gs` defaults are anonymous, and sockets may only
connect to loopback, so no test can reach real Google Cloud. Everything is undone at
session end. Avoid `mv`/rename: the emulator answers 501 to `moveTo`, which gcsfs retries
for ~30 s.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer

import fsspec
import pytest
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage

from tests.support.loopback import loopback_only

PROJECT = "liftoff-test"

# The emulator's Storage mutates and re-serialises plain dicts on every call, so requests
# are handled one at a time. Each connection still gets its own thread, so a client that
# has connected but not yet sent its request cannot stall the others, as it does on the
# stock single-threaded server.
_STORAGE_LOCK = threading.Lock()


class _SerializedHandler(RequestHandler):
    def do_GET(self):
        with _STORAGE_LOCK:
            super().do_GET()

    def do_POST(self):
        with _STORAGE_LOCK:
            super().do_POST()

    def do_PUT(self):
        with _STORAGE_LOCK:
            super().do_PUT()

    def do_PATCH(self):
        with _STORAGE_LOCK:
            super().do_PATCH()

    def do_DELETE(self):
        with _STORAGE_LOCK:
            super().do_DELETE()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # gcsfs races requests (e.g. object vs. prefix lookups in `exists`) and hangs up on
        # the loser; the resulting broken pipe is expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _clear_gcs_instances() -> None:
    # fsspec caches filesystem instances; one made before (or during) this session would
    # keep its endpoint, credentials and listings cache.
    fsspec.get_filesystem_class("gs").clear_instance_cache()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Start the emulator and point every GCS client at it; yields `http://127.0.0.1:PORT`."""
    storage = Storage(use_memory_fs=True)  # nothing is written to disk
    # Port 0: the OS picks a free port at bind time, so there is no race to find one.
    httpd = _Server(("127.0.0.1", 0), partial(_SerializedHandler, storage))
    serve = partial(httpd.serve_forever, poll_interval=0.05)  # quick shutdown at teardown
    thread = threading.Thread(target=serve, name="gcs-emulator", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"

    with pytest.MonkeyPatch.context() as mp:
        # The scheme is required: google-cloud-storage builds URLs from it verbatim.
        mp.setenv("STORAGE_EMULATOR_HOST", url)
        # Read when gcsfs is first imported (conftest sets it too); if true, every bucket call
        # waits ~60 s on a gRPC probe.
        mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        mp.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
        mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        # google-auth must never probe the GCE metadata server for default credentials.
        mp.setenv("NO_GCE_CHECK", "True")
        mp.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
        mp.setenv("GCE_METADATA_IP", "127.0.0.1:9")
        for var in ("NO_PROXY", "no_proxy"):  # a configured HTTP proxy must not see emulator calls
            mp.setenv(var, ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get(var)])))
        # Plain `fsspec.open("gs://...")` then needs no credentials and no project argument.
        mp.setitem(fsspec.config.conf, "gs", {"token": "anon", "project": PROJECT})
        mp.setattr(socket.socket, "connect", loopback_only(socket.socket.connect))
        mp.setattr(socket.socket, "connect_ex", loopback_only(socket.socket.connect_ex))
        _clear_gcs_instances()
        try:
            yield url
        finally:
            _clear_gcs_instances()
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)


@pytest.fixture
def gcs_bucket(gcs_emulator: str) -> str:
    """A new, empty bucket in the emulator; returns its bare name (use as `gs://NAME/...`).

    Buckets are never deleted: the emulator is in memory and dies with the session.
    """
    name = f"test-{uuid.uuid4().hex[:16]}"
    fsspec.filesystem("gs").mkdir(name)
    return name
