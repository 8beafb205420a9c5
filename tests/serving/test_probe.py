"""The probe: every category of bad or extreme input, against the real servers on loopback.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/serving/test_probe.py

Each input must get a JSON error with the right status and a stable reason (never an HTTP 500,
never plain text), nothing in the server's log may be a traceback, and the server must go on
serving. The categories: malformed bodies, wrong instance types, parameters out of range,
oversized bodies, prompts, instance counts and images, HTTP methods and paths, image values
(`"gs://"`, local paths, undecodable bytes, a 12000 x 12000 PNG of 140 KB), gs:// storage that
is missing, failing, refusing or unreachable (a loopback stand-in answering each way), and
peak memory under all of it in a `python -m serving` process.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import socket
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import fsspec
import pytest

from serving.limits import Limits
from serving.local import LocalServer, ServerError
from serving.server import create_app
from tests.serving.servers import WAIT_S, ThreadServer, serve_text
from trainers.common import storage
from trainers.lm.model import load_trained
from trainers.vlm.synthetic import sample_instances

FEW = {"max_new_tokens": 4}
HUGE_SIDE = 12000


def body(instances, parameters=None) -> bytes:
    payload = {"instances": instances}
    if parameters is not None:
        payload["parameters"] = parameters
    return json.dumps(payload).encode()


def _params(**values) -> bytes:
    return body(["What is 2 + 3?"], values)


BODIES = [
    ("not JSON", b'{"instances": [', "invalid_json", "not valid JSON"),
    ("not UTF-8", b"\xff\xfe{}", "invalid_json", "not valid JSON"),
    ("nested too deeply", b"[" * 200_000, "invalid_json", "nested too deeply"),
    ("empty body", b"", "invalid_json", "not valid JSON"),
    ("trailing bytes", b'{"instances": ["hi"]} x', "invalid_json", "Extra data"),
    ("a 5000-digit number", b'{"instances": [' + b"1" * 5000 + b"]}", "invalid_json", "digits"),
    ("null", b"null", "invalid_request", "JSON object"),
    ("a list", b'["hi"]', "invalid_request", "JSON object"),
    ("a string", b'"hi"', "invalid_request", "JSON object"),
    ("a number", b"42", "invalid_request", "JSON object"),
    ("no instances", b'{"parameters": {}}', "invalid_request", '"instances"'),
    ("empty instances", b'{"instances": []}', "invalid_request", '"instances"'),
    ("instances a string", b'{"instances": "hi"}', "invalid_request", '"instances"'),
    ("instances null", b'{"instances": null}', "invalid_request", '"instances"'),
    ("instances an object", b'{"instances": {"a": 1}}', "invalid_request", '"instances"'),
    ("unknown field", b'{"instances": ["hi"], "parameter": {}}', "invalid_request", "'parameter'"),
]
INSTANCES = [
    ("an int", 7, "instances[0] must be a string"),
    ("null", None, "got null"),
    ("a bool", True, "got bool"),
    ("NaN", float("nan"), "got float"),
    ("a list", ["hi"], "got list"),
    ("an empty object", {}, "has keys []"),
    ("an unknown key", {"text": "hi"}, "has keys ['text']"),
    ("two forms", {"prompt": "a", "messages": []}, "expected one of"),
    ("prompt an int", {"prompt": 3}, "instances[0].prompt must be a string"),
    ("prompt null", {"prompt": None}, "got null"),
    ("prompt a list", {"prompt": ["a"]}, "got list"),
    ("messages a string", {"messages": "hi"}, "messages must be a non-empty list"),
    ("messages empty", {"messages": []}, "messages must be a non-empty list"),
    ("a message string", {"messages": ["hi"]}, "messages[0] must be an object"),
    ("no content", {"messages": [{"role": "user"}]}, "messages[0] must be an object"),
    ("content an int", {"messages": [{"role": "user", "content": 1}]}, "string 'content'"),
    ("a bad role", {"messages": [{"role": "bot", "content": "x"}]}, "role='bot' is invalid"),
    ("no role", {"messages": [{"content": "x"}]}, "role=None is invalid"),
    ("a list role", {"messages": [{"role": ["user"], "content": "x"}]}, "role=['user']"),
    ("a lone surrogate", "\ud800", "not valid Unicode"),
    ("one in a message", {"messages": [{"role": "user", "content": "a\udfff"}]}, "not valid Uni"),
]
PARAMETERS = [
    ("max_new_tokens 0", {"max_new_tokens": 0}, "max_new_tokens=0"),
    ("max_new_tokens -1", {"max_new_tokens": -1}, "max_new_tokens=-1"),
    ("max_new_tokens 2049", {"max_new_tokens": 2049}, "1 to 2048"),
    ("max_new_tokens 1e9", {"max_new_tokens": 10**9}, "1000000000"),
    ("max_new_tokens true", {"max_new_tokens": True}, "True"),
    ("max_new_tokens a string", {"max_new_tokens": "4"}, "'4'"),
    ("max_new_tokens 4.0", {"max_new_tokens": 4.0}, "an integer"),
    ("max_new_tokens a list", {"max_new_tokens": [4]}, "[4]"),
    ("temperature -1", {"temperature": -1}, "temperature=-1"),
    ("temperature 1e-300", {"temperature": 1e-300}, "temperature=1e-300"),
    ("temperature 0.001", {"temperature": 0.001}, "from 0.01 to 100"),
    ("temperature 101", {"temperature": 101}, "temperature=101"),
    ("temperature NaN", {"temperature": float("nan")}, "nan"),
    ("temperature Infinity", {"temperature": float("inf")}, "inf"),
    ("temperature -Infinity", {"temperature": float("-inf")}, "-inf"),
    ("temperature 10**400", {"temperature": 10**400}, "temperature=1000"),
    ("temperature a string", {"temperature": "hot"}, "'hot'"),
    ("temperature true", {"temperature": True}, "True"),
    ("temperature null", {"temperature": None}, "None"),
    ("top_p 0", {"top_p": 0}, "top_p=0"),
    ("top_p -0.1", {"top_p": -0.1}, "top_p=-0.1"),
    ("top_p 1.5", {"top_p": 1.5}, "top_p=1.5"),
    ("top_p NaN", {"top_p": float("nan")}, "nan"),
    ("top_p a string", {"top_p": "1"}, "'1'"),
    ("an unknown parameter", {"beams": 4}, "parameters.beams is unknown"),
]
NOT_OBJECTS = [("a list", [1]), ("a string", "x"), ("a number", 3)]
HUGE = "x" * 1_400_000
OVERSIZED = [
    ("a 1.6 MB body", body(["x" * 1_600_000]), 413, "body_too_large", "1500000 bytes"),
    ("a 1.4 MB prompt", body([HUGE]), 422, "prompt_too_long", "bytes"),
    (
        "a 1.4 MB message",
        body([{"messages": [{"role": "user", "content": HUGE}]}]),
        422,
        "prompt_too_long",
        "bytes",
    ),
    ("300 words", body(["two words " * 150], FEW), 422, "prompt_too_long", "context of 256"),
    ("2048 new tokens", _params(max_new_tokens=2048), 422, "prompt_too_long", "max_new_tokens"),
    ("65 instances", body(["hi"] * 65), 413, "too_many_instances", "the limit is 64"),
    ("40000 instances", body(["a"] * 40_000), 413, "too_many_instances", "40000"),
    (
        "300 messages",
        body([{"messages": [{"role": "user", "content": "a"}] * 300}]),
        413,
        "too_many_messages",
        "the limit is 256",
    ),
]
HTTP = [
    ("GET", "/predict", 405, "method_not_allowed"),
    ("PUT", "/predict", 405, "method_not_allowed"),
    ("DELETE", "/predict", 405, "method_not_allowed"),
    ("POST", "/health", 405, "method_not_allowed"),
    ("GET", "/nope", 404, "not_found"),
    ("POST", "/predict/", 404, "not_found"),
]
LONG = "What is 2 + 3? " * 27  # about 250 tokens: the default answer length shrinks to fit
ACCEPTED = [
    ("parameters null", json.dumps({"instances": [LONG], "parameters": None}).encode()),
    ("max_new_tokens null", body([LONG], {"max_new_tokens": None})),
    ("sampling at the lowest temperature", _params(max_new_tokens=2, temperature=0.01)),
    ("top_p 1", _params(max_new_tokens=2, top_p=1)),
    ("an empty prompt", body([""], FEW)),
    ("text that is not ASCII", body(["¿Cuánto es 2 + 3? 二加三 🙂"], FEW)),
]


@pytest.fixture(autouse=True)
def no_tracebacks(capfd):
    """Nothing the server logs during a test carries a traceback (storage errors are logged,
    one line each: they are the server's trouble, not the client's)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "")]
    for logger in loggers:
        logger.addHandler(handler)
    yield
    for logger in loggers:
        logger.removeHandler(handler)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert [r.getMessage() for r in records if r.exc_info] == []


@pytest.fixture(scope="module")
def text_server(tiny_model_dir):
    with serve_text(load_trained(tiny_model_dir, device="cpu")) as (running, _):
        yield running


def _refused(server, raw: bytes, status: int, reason: str, *fragments: str):
    got, answer, headers = server.exchange("POST", "/predict", raw)
    assert (got, answer["error"]["code"], answer["error"]["reason"]) == (status, status, reason)
    assert all(f in answer["error"]["message"] for f in fragments), answer
    assert "\n" not in answer["error"]["message"] and len(answer["error"]["message"]) < 400
    assert ("retry-after" in headers) == (status == 503)


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"), [c[1:] for c in BODIES], ids=[c[0] for c in BODIES]
)
def test_bodies(text_server, raw, reason, fragment):
    _refused(text_server, raw, 400, reason, fragment)


@pytest.mark.parametrize(
    ("instance", "fragment"), [c[1:] for c in INSTANCES], ids=[c[0] for c in INSTANCES]
)
def test_instances(text_server, instance, fragment):
    _refused(text_server, body([instance], FEW), 400, "invalid_request", fragment)
    _refused(text_server, body(["ok", instance], FEW), 400, "invalid_request", "instances[1]")


@pytest.mark.parametrize(
    ("parameters", "fragment"), [c[1:] for c in PARAMETERS], ids=[c[0] for c in PARAMETERS]
)
def test_parameters(text_server, parameters, fragment):
    _refused(text_server, _params(**parameters), 400, "invalid_request", fragment)


@pytest.mark.parametrize("parameters", [c[1] for c in NOT_OBJECTS], ids=[c[0] for c in NOT_OBJECTS])
def test_parameters_not_an_object(text_server, parameters):
    raw = json.dumps({"instances": ["hi"], "parameters": parameters}).encode()
    _refused(text_server, raw, 400, "invalid_request", "parameters must be an object")


@pytest.mark.parametrize(
    ("raw", "status", "reason", "fragment"),
    [c[1:] for c in OVERSIZED],
    ids=[c[0] for c in OVERSIZED],
)
def test_oversized(text_server, raw, status, reason, fragment):
    _refused(text_server, raw, status, reason, fragment)


def _chunks():
    yield b'{"instances": ["hi"]}'
    for _ in range(16):
        yield b" " * 100_000


def test_oversized_chunked_body_is_counted_as_it_arrives(text_server):
    status, answer = text_server.call("POST", "/predict", _chunks())
    assert (status, answer["error"]["reason"]) == (413, "body_too_large")


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"), HTTP, ids=[f"{m} {p}" for m, p, *_ in HTTP]
)
def test_methods_and_paths(text_server, method, path, status, reason):
    got, answer = text_server.call(method, path, b"{}")
    assert (got, answer["error"]["reason"]) == (status, reason)


@pytest.mark.parametrize("raw", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_edges_that_are_served(text_server, raw):
    status, answer = text_server.call("POST", "/predict", raw, {"Content-Type": "text/plain"})
    assert status == 200 and len(answer["predictions"]) == 1


# --- images ---------------------------------------------------------------------------------


def png_of(width: int, height: int) -> bytes:
    """A valid greyscale PNG of any size, compressed in a stream (never held decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows, squeeze = b"\x00" * (width + 1) * 100, zlib.compressobj(9)
    idat = b"".join(squeeze.compress(rows) for _ in range(height // 100))
    idat += squeeze.compress(b"\x00" * (width + 1) * (height % 100)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def huge_png() -> bytes:
    data = png_of(HUGE_SIDE, HUGE_SIDE)
    assert len(data) < 150_000  # 144 million pixels in 140 KB
    return data


B64 = sample_instances(1)[0]["image"]["b64"]
PNG = base64.b64decode(B64)
IMAGES = [
    ('"gs://"', "gs://", "is not a gs://BUCKET/OBJECT URI"),
    ("a bucket alone", "gs://bucket", "is not a gs://BUCKET/OBJECT URI"),
    ("a bucket and a slash", "gs://bucket/", "is not a gs://BUCKET/OBJECT URI"),
    ("a bad bucket name", "gs://Bad_Bucket/x.png", "is not a gs://BUCKET/OBJECT URI"),
    ("no bucket", "gs:///x.png", "is not a gs://BUCKET/OBJECT URI"),
    ("a local path", "/etc/passwd", "must be {'b64'"),
    ("a file URI", "file:///etc/passwd", "must be {'b64'"),
    ("an http URL", "http://127.0.0.1:9/x.png", "must be {'b64'"),
    ("an empty string", "", "must be {'b64'"),
    ("an int", 7, "must be {'b64'"),
    ("null", None, "must be {'b64'"),
    ("a list", ["gs://b/x.png"], "must be {'b64'"),
    ("b64 an int", {"b64": 7}, "must be {'b64'"),
    ("bytes, not b64", {"bytes": B64}, "must be {'b64'"),
    ("a path object", {"path": "/etc/passwd"}, "must be {'b64'"),
    ("b64 and more", {"b64": B64, "x": 1}, "must be {'b64'"),
    ("not base64", {"b64": "%%%"}, "not valid base64"),
    ("not an image", {"b64": "bm90IGFuIGltYWdl"}, "cannot identify image file"),
    ("empty bytes", {"b64": ""}, "cannot identify image file"),
    (
        "a truncated PNG",
        {"b64": base64.b64encode(PNG[: len(PNG) // 2]).decode()},
        "not a decodable",
    ),
]
VLM_INSTANCES = [
    ("a string", "what colour is the square?", "instances[0] must be {'image'"),
    ("no image", {"prompt": "what colour?"}, "instances[0] must be {'image'"),
    ("no prompt", {"image": {"b64": B64}}, "instances[0] must be {'image'"),
    ("an extra key", {"image": {"b64": B64}, "prompt": "x", "n": 1}, "must be {'image'"),
    ("an empty prompt", {"image": {"b64": B64}, "prompt": ""}, "prompt must be a non-empty"),
    ("a blank prompt", {"image": {"b64": B64}, "prompt": "  "}, "prompt must be a non-empty"),
    ("an int prompt", {"image": {"b64": B64}, "prompt": 3}, "prompt must be a non-empty"),
    ("a lone surrogate", {"image": {"b64": B64}, "prompt": "\ud800"}, "not valid Unicode"),
]


@pytest.fixture(scope="module")
def vlm_server(tiny_vlm_dir):
    limits = Limits(storage_timeout_s=1, max_image_bytes=300_000)
    with ThreadServer(create_app(tiny_vlm_dir, limits=limits)) as running:
        assert running.wait_loaded() == (200, {"status": "ready"})
        yield running


def _ask(image, prompt: str = "what colour is the square?", parameters=FEW) -> bytes:
    return body([{"image": image, "prompt": prompt}], parameters)


@pytest.mark.parametrize(("image", "fragment"), [c[1:] for c in IMAGES], ids=[c[0] for c in IMAGES])
def test_image_values(vlm_server, image, fragment):
    reason = "invalid_request" if "must be" in fragment or "URI" in fragment else "invalid_image"
    _refused(vlm_server, _ask(image), 400, reason, "instances[0].image", fragment)


@pytest.mark.parametrize(
    ("instance", "fragment"), [c[1:] for c in VLM_INSTANCES], ids=[c[0] for c in VLM_INSTANCES]
)
def test_vlm_instances(vlm_server, instance, fragment):
    _refused(vlm_server, body([instance], FEW), 400, "invalid_request", fragment)


def test_vlm_oversized_inputs(vlm_server, huge_png, gcs_bucket):
    huge = {"b64": base64.b64encode(huge_png).decode()}
    big_object = f"gs://{gcs_bucket}/big.png"
    with storage.open_uri(big_object, "wb") as f:
        f.write(PNG + b"\x00" * 400_000)
    cases = [
        (_ask(huge), 413, "image_too_large", "12000x12000 = 144000000 pixels"),
        (_ask({"b64": base64.b64encode(png_of(5000, 4000)).decode()}), 413, "image_too_large"),
        (_ask({"b64": base64.b64encode(PNG + bytes(400_000)).decode()}), 413, "image_too_large"),
        (_ask(big_object), 413, "image_too_large", "the limit is 300000"),
        (_ask({"b64": B64}, HUGE), 422, "prompt_too_long", "bytes"),
        (_ask({"b64": B64}, parameters={"max_new_tokens": 100}), 422, "prompt_too_long", "128"),
        (body([{"image": {"b64": B64}, "prompt": "x"}] * 65), 413, "too_many_instances", "64"),
    ]
    for raw, status, reason, *fragments in cases:
        _refused(vlm_server, raw, status, reason, *fragments)


def test_a_missing_gs_image_is_the_clients_400(vlm_server, gcs_bucket):
    uri = f"gs://{gcs_bucket}/nowhere.png"
    _refused(vlm_server, _ask(uri), 400, "invalid_image", f"{uri}: no such object")


class _Storage(http.server.BaseHTTPRequestHandler):
    """A loopback stand-in for GCS that answers every request one way (`server.mode`)."""

    def _answer(self) -> None:
        mode = self.server.mode
        if mode == "hang":
            self.server.release.wait(WAIT_S)
            return
        status, text = (200, "not json") if mode == "garbage" else (mode, '{"error": {}}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


class _StorageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gives up on a hanging answer is the point, not a failure


@pytest.fixture
def faulty_storage(monkeypatch):
    """Point gs:// reads at the stand-in (in `mode`), or at a port where nothing listens."""
    httpd = _StorageServer(("127.0.0.1", 0), _Storage)
    httpd.release = threading.Event()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def use(mode) -> None:
        httpd.mode = mode
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        if mode == "unreachable":
            with socket.socket() as sock:  # bound, then closed: connections are refused
                sock.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setitem(fsspec.config.conf["gs"], "endpoint_url", url)

    yield use
    httpd.release.set()
    httpd.shutdown()


STORAGE_FAULTS = [
    (503, 504, "storage_timeout"),  # retried by gcsfs past the storage timeout
    (500, 504, "storage_timeout"),
    (429, 504, "storage_timeout"),
    ("hang", 504, "storage_timeout"),
    ("unreachable", 504, "storage_timeout"),
    (403, 502, "storage_error"),
    (401, 502, "storage_error"),
    ("garbage", 502, "storage_error"),
]


@pytest.mark.parametrize(
    ("mode", "status", "reason"), STORAGE_FAULTS, ids=[str(m) for m, *_ in STORAGE_FAULTS]
)
def test_storage_faults_are_502_or_504(
    vlm_server, gcs_emulator, faulty_storage, mode, status, reason
):
    faulty_storage(mode)
    _refused(vlm_server, _ask("gs://bucket/x.png"), status, reason, "instances[0].image: reading")


def test_the_vlm_server_still_answers_after_the_probe(vlm_server):
    status, answer = vlm_server.predict(sample_instances(2), FEW)
    assert status == 200 and len(answer["predictions"]) == 2


def test_the_text_server_still_answers_after_the_probe(text_server):
    status, answer = text_server.predict(["What is 2 + 3?"], FEW)
    assert status == 200 and answer["predictions"][0]


# --- memory ---------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    """The process's high-water resident memory, in bytes (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _status(local: LocalServer, instances: list) -> int:
    try:
        local.predict(instances, FEW)
    except ServerError as err:
        return err.status
    return 200


def test_peak_memory_stays_within_the_documented_budget(tiny_vlm_dir, huge_png):
    huge = {"image": {"b64": base64.b64encode(huge_png).decode()}, "prompt": "what?"}
    attacks = [
        [huge],  # 413 from its header: never decoded
        [{"image": {"b64": B64}, "prompt": HUGE}],  # 422 before it is tokenized
        [{"image": "gs://b/x.png", "prompt": "x"}] * 30_000,  # 413 before any is looked at
        sample_instances(2) * 8,  # real ones, served
    ]
    limits = Limits(max_inflight_requests=16, num_decoders=1, max_image_pixels=2048 * 2048)
    env = {
        "LIFTOFF_SERVE_MAX_INFLIGHT_REQUESTS": str(limits.max_inflight_requests),
        "LIFTOFF_SERVE_NUM_DECODERS": str(limits.num_decoders),
        "LIFTOFF_SERVE_MAX_IMAGE_PIXELS": str(limits.max_image_pixels),
    }
    with LocalServer(tiny_vlm_dir, env=env) as local:
        local.wait_healthy(timeout_s=WAIT_S)
        local.predict(sample_instances(16), FEW)  # a full batch's own allocations, once
        before = _peak_rss(local.process.pid)
        with ThreadPoolExecutor(8) as pool:  # three of each at once
            outcomes = list(pool.map(lambda instances: _status(local, instances), attacks * 3))
        after = _peak_rss(local.process.pid)
        assert "Traceback" not in local.output_tail()
    assert outcomes == [413, 422, 413, 200] * 3
    budget = limits.request_memory_bytes(image_side=32)
    assert after - before <= budget, (after - before, budget)
    # Decoding the 12000 x 12000 image even once takes 5 bytes a pixel at the least (its grey
    # values and the RGBA copy): the budget would not hold it.
    assert budget < HUGE_SIDE**2 * 5
