"""The Vertex AI serving contract, checked against the real server on loopback.

    OMP_NUM_THREADS=1 python -m pytest -q tests/serving

Most tests share one uvicorn server (in a thread, custom AIP_* routes) holding a tiny untrained
model; the loader seam `predictor_factory` wraps the real Predictor to count generate calls or
hold the load back. LocalServer runs `python -m serving` as a child process.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time

import pytest
import uvicorn

from serving.__main__ import main, parser
from serving.local import LocalServer, ServerError
from serving.predictor import Predictor
from serving.server import MAX_BODY_BYTES, create_app
from tests.support.tiny_model import tiny_model_dir  # noqa: F401
from trainers.common import storage

HEALTH = "/v1/ping"
PREDICT = "/v1/models/tiny:predict"
FEW = {"max_new_tokens": 4}
QUESTIONS = ["What is 2 + 3?", "What is 41 - 7?", "What is 19 + 19?"]


class ThreadServer:
    """uvicorn serving `app` from a thread, on a port the OS picked (no race to find one)."""

    def __init__(self, app):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, args=([sock],), daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        _wait_for(lambda: self.server.started, "the server to start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def call(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
        """(status, JSON body) of one request; `body` may be bytes or an iterable (chunked)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def predict(self, instances, parameters=None, path: str = PREDICT) -> tuple[int, dict]:
        payload = {"instances": instances, **({"parameters": parameters} if parameters else {})}
        return self.call("POST", path, json.dumps(payload).encode())

    def wait_loaded(self, path: str = HEALTH) -> tuple[int, dict]:
        """The first health answer that is not 503 (loading)."""
        answer = self.call("GET", path)
        deadline = time.monotonic() + 120
        while answer[0] == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = self.call("GET", path)
        return answer


def _wait_for(condition, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


class CountingLoader:
    """Loads the real Predictor and records the batch size of every `model.generate` call."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.num_new_tokens: list[int] = []

    def __call__(self, uri: str) -> Predictor:
        predictor = Predictor.load(uri)
        generate = predictor.model.generate

        def counted(**kwargs):
            out = generate(**kwargs)
            self.batch_sizes.append(len(kwargs["input_ids"]))
            self.num_new_tokens.append(out.shape[1] - kwargs["input_ids"].shape[1])
            return out

        predictor.model.generate = counted
        return predictor


@pytest.fixture(scope="module")
def loader() -> CountingLoader:
    return CountingLoader()


@pytest.fixture(scope="module")
def server(tiny_model_dir, loader):  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIP_HEALTH_ROUTE", HEALTH)
        mp.setenv("AIP_PREDICT_ROUTE", PREDICT)
        app = create_app(tiny_model_dir, predictor_factory=loader)
    with ThreadServer(app) as running:
        assert running.wait_loaded() == (200, {"status": "ready"})
        yield running


def _answers(server, instances, parameters=FEW) -> list[str]:
    status, body = server.predict(instances, parameters)
    assert status == 200, body
    assert len(body["predictions"]) == len(instances)
    return body["predictions"]


def test_routes_come_from_the_environment(server):
    assert server.call("GET", HEALTH) == (200, {"status": "ready"})
    assert server.call("GET", "/health")[0] == 404
    assert server.predict(["hi"], FEW, path="/predict")[0] == 404
    assert server.predict(["hi"], FEW)[0] == 200


def test_the_three_instance_forms_are_the_same_conversation(server):
    question = QUESTIONS[0]
    instances = [
        question,
        {"prompt": question},
        {"messages": [{"role": "user", "content": question}]},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "?"},
            ]
        },
    ]
    answers = _answers(server, instances)
    assert all(isinstance(a, str) for a in answers)
    assert answers[0] != ""  # guard: an empty answer would make the equalities vacuous
    assert answers[0] == answers[1] == answers[2]
    assert answers[3] != answers[0]


def test_one_generate_call_per_request(server, loader):
    before = len(loader.batch_sizes)
    _answers(server, QUESTIONS * 2)
    assert loader.batch_sizes[before:] == [6]


def test_max_new_tokens_bounds_the_answer(server, loader):
    before = len(loader.num_new_tokens)
    _answers(server, QUESTIONS, {"max_new_tokens": 3})
    assert loader.num_new_tokens[before:] == [3]  # the tiny model never emits EOS this early


def test_greedy_is_deterministic_and_independent_of_the_batch(server):
    batched = _answers(server, QUESTIONS + QUESTIONS[:1])
    singles = [_answers(server, [q])[0] for q in QUESTIONS]
    assert len(set(singles)) == len(QUESTIONS)  # guard: answers depend on the prompt
    assert batched == singles + singles[:1]


def test_sampling_parameters_are_accepted(server):
    answers = _answers(server, QUESTIONS, {"max_new_tokens": 4, "temperature": 1.5, "top_p": 0.9})
    assert all(isinstance(a, str) for a in answers)


BAD_REQUESTS = {
    "not JSON": (b'{"instances": [', "not valid JSON"),
    "not UTF-8": (b"\xff\xfe{}", "not valid JSON"),
    "nested too deeply": (b"[" * 200_000, "not valid JSON"),
    "not an object": (b'["hi"]', "JSON object"),
    "no instances": (b'{"parameters": {}}', '"instances"'),
    "empty instances": (b'{"instances": []}', '"instances"'),
    "instances not a list": (b'{"instances": "hi"}', '"instances"'),
    "unknown field": (b'{"instances": ["hi"], "parameter": {}}', "'parameter'"),
    "bad instance": (b'{"instances": ["hi", 7]}', "instances[1]"),
    "two keys": (b'{"instances": [{"prompt": "a", "messages": []}]}', "instances[0]"),
    "prompt not str": (b'{"instances": [{"prompt": 3}]}', "instances[0].prompt"),
    "bad role": (
        b'{"instances": [{"messages": [{"role": "bot", "content": "x"}]}]}',
        "instances[0].messages[0].role='bot'",
    ),
    "no content": (b'{"instances": [{"messages": [{"role": "user"}]}]}', "messages[0]"),
    "zero tokens": (b'{"instances": ["hi"], "parameters": {"max_new_tokens": 0}}', "1 to 2048"),
    "too many tokens": (
        b'{"instances": ["hi"], "parameters": {"max_new_tokens": 2049}}',
        "parameters.max_new_tokens=2049",
    ),
    "bool tokens": (b'{"instances": ["hi"], "parameters": {"max_new_tokens": true}}', "True"),
    "negative temperature": (
        b'{"instances": ["hi"], "parameters": {"temperature": -1}}',
        "parameters.temperature=-1",
    ),
    "NaN temperature": (b'{"instances": ["hi"], "parameters": {"temperature": NaN}}', "nan"),
    "zero top_p": (b'{"instances": ["hi"], "parameters": {"top_p": 0}}', "parameters.top_p=0"),
    "unknown parameter": (b'{"instances": ["hi"], "parameters": {"beams": 4}}', "beams"),
    "parameters not an object": (b'{"instances": ["hi"], "parameters": [1]}', "parameters"),
}


@pytest.mark.parametrize("body, expected", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_is_400_and_the_server_keeps_serving(server, body, expected):
    status, answer = server.call("POST", PREDICT, body, {"Content-Type": "application/json"})
    assert status == 400
    assert list(answer) == ["error"] and expected in answer["error"]
    assert "\n" not in answer["error"]
    assert len(_answers(server, ["hi"])) == 1


def _oversized_chunks():
    piece = b" " * 100_000
    yield b'{"instances": ["hi"]}'
    for _ in range(16):
        yield piece


def test_oversized_body_is_413_and_the_server_keeps_serving(server):
    big = json.dumps({"instances": ["x" * 1_600_000]}).encode()
    status, answer = server.call("POST", PREDICT, big)
    assert (status, list(answer)) == (413, ["error"])
    assert _answers(server, ["hi"])
    # Chunked: no Content-Length to trust, so the bytes actually read are counted.
    status, answer = server.call("POST", PREDICT, _oversized_chunks())
    assert (status, list(answer)) == (413, ["error"])
    assert _answers(server, ["hi"])
    # Just under the limit (JSON allows trailing whitespace) is still served.
    near = b'{"instances": ["hi"], "parameters": {"max_new_tokens": 2}}'
    status, _ = server.call("POST", PREDICT, near + b" " * (MAX_BODY_BYTES - len(near)))
    assert status == 200


def test_health_is_503_until_the_model_has_loaded(tiny_model_dir):  # noqa: F811
    gate = threading.Event()

    def held_back(uri: str) -> Predictor:
        assert gate.wait(timeout=120)
        return Predictor.load(uri)

    with ThreadServer(create_app(tiny_model_dir, predictor_factory=held_back)) as running:
        assert running.call("GET", "/health") == (503, {"status": "loading"})
        status, answer = running.predict(["hi"], FEW, path="/predict")
        assert status == 503 and "loading" in answer["error"]
        gate.set()
        assert running.wait_loaded("/health") == (200, {"status": "ready"})
        assert running.predict(["hi"], FEW, path="/predict")[0] == 200


def test_generation_runs_off_the_event_loop_one_batch_at_a_time(tiny_model_dir):  # noqa: F811
    entered, release = threading.Semaphore(0), threading.Event()
    running_now, most_at_once = [0], [0]

    def blocking_loader(uri: str) -> Predictor:
        predictor = Predictor.load(uri)
        generate = predictor.model.generate

        def held(**kwargs):
            running_now[0] += 1
            most_at_once[0] = max(most_at_once[0], running_now[0])
            entered.release()
            assert release.wait(timeout=120)
            running_now[0] -= 1
            return generate(**kwargs)

        predictor.model.generate = held
        return predictor

    with ThreadServer(create_app(tiny_model_dir, predictor_factory=blocking_loader)) as running:
        assert running.wait_loaded("/health")[0] == 200
        results = []

        def client():
            results.append(running.predict(["hi"], FEW, path="/predict")[0])

        clients = [threading.Thread(target=client) for _ in range(2)]
        for c in clients:
            c.start()
        assert entered.acquire(timeout=120)  # one generation is now blocked mid-batch
        assert running.call("GET", "/health") == (200, {"status": "ready"})
        release.set()
        for c in clients:
            c.join(timeout=120)
    assert results == [200, 200]
    assert most_at_once[0] == 1


def test_health_is_500_when_the_model_cannot_load(tmp_path):
    with ThreadServer(create_app(str(tmp_path / "missing"))) as running:
        status, answer = running.wait_loaded("/health")
        assert status == 500 and "no config.json" in answer["error"]
        assert running.predict(["hi"], FEW, path="/predict")[0] == 503


def test_gs_model_uri_is_downloaded_and_served(gcs_bucket, tiny_model_dir, server):  # noqa: F811
    uri = f"gs://{gcs_bucket}/run/model"
    storage.upload_dir(tiny_model_dir, uri)
    with ThreadServer(create_app(uri)) as running:
        assert running.wait_loaded("/health") == (200, {"status": "ready"})
        status, answer = running.predict(QUESTIONS, FEW, path="/predict")
    assert status == 200
    assert answer["predictions"] == _answers(server, QUESTIONS)


def test_lora_run_serves_the_merged_weights(tmp_path, tiny_model_dir, server):  # noqa: F811
    root = tmp_path / "lora-run"
    shutil.copytree(tiny_model_dir, root / "merged")
    # The run's root holds only an adapter, which cannot load without its base model.
    (root / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "none"}))
    predictor = Predictor.load(str(root))
    assert predictor.model_dir == str(root / "merged")
    assert predictor.predict(QUESTIONS, FEW) == _answers(server, QUESTIONS)


def test_local_server_runs_the_container_entrypoint(tiny_model_dir, server):  # noqa: F811
    with LocalServer(tiny_model_dir, env={"AIP_PREDICT_ROUTE": PREDICT}) as local:
        local.wait_healthy(timeout_s=120)
        answer = local.predict(QUESTIONS, FEW)
        with pytest.raises(ServerError, match="parameters.top_p") as bad:
            local.predict(["hi"], {"top_p": 2})
        process = local.process
    assert answer == {"predictions": _answers(server, QUESTIONS)}
    assert bad.value.status == 400
    assert process.poll() is not None  # stopped on leaving the block


def test_local_server_reports_a_server_that_exits():
    with LocalServer("") as local, pytest.raises(RuntimeError) as failed:
        local.wait_healthy(timeout_s=60)
    assert "exited (code 2)" in str(failed.value)
    assert "no model to serve" in str(failed.value)


def test_main_without_a_model_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.delenv("AIP_STORAGE_URI", raising=False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no model to serve")


def test_port_defaults_to_the_vertex_variable(monkeypatch):
    monkeypatch.setenv("AIP_HTTP_PORT", "9123")
    monkeypatch.setenv("AIP_STORAGE_URI", "gs://b/model")
    args = parser().parse_args([])
    assert (args.port, args.model, args.host) == (9123, "gs://b/model", "0.0.0.0")
    monkeypatch.delenv("AIP_HTTP_PORT")
    assert parser().parse_args([]).port == 8080
