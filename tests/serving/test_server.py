"""The Vertex AI serving contract, readiness and dynamic batching, checked against the real
server on loopback.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/serving/test_server.py

One tiny untrained model is loaded once; each test's server wraps it with the limits the test
needs (tests/serving/servers.py). Batching tests hold the first batch inside the model, line
requests up behind it, and then check which batches ran and what each client got. The bad
inputs are in test_probe.py. LocalServer runs `python -m serving` as a child process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from serving import contract
from serving.__main__ import main, parser
from serving.local import LocalServer, ServerError
from serving.params import Generation
from serving.server import create_app
from serving.text import TextPredictor
from tests.serving.servers import WAIT_S, ThreadServer, line_up, serve_text, wait_for
from trainers.common import storage
from trainers.lm.model import load_trained

HEALTH = "/v1/ping"
PREDICT = "/v1/models/tiny:predict"
FEW = {"max_new_tokens": 4}
QUESTIONS = ["What is 2 + 3?", "What is 41 - 7?", "What is 19 + 19?", "What is 8 - 1?"]
FIRST = (["What is 1 + 1?"], FEW)  # held inside the model while the others queue


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return load_trained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def new_tokens(loaded) -> list[int]:
    """New tokens of every `model.generate` call from here on."""
    model, counts = loaded[0], []
    generate = model.generate

    def counted(**kwargs):
        out = generate(**kwargs)
        counts.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    model.generate = counted
    yield counts
    model.generate = generate


@pytest.fixture(scope="module")
def server(loaded, new_tokens):
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as mp:  # the routes are read when the app is made
            mp.setenv(contract.HEALTH_ROUTE_ENV, HEALTH)
            mp.setenv(contract.PREDICT_ROUTE_ENV, PREDICT)
            running, _ = stack.enter_context(serve_text(loaded))
        yield running


@pytest.fixture(scope="module")
def singles(server) -> dict[str, str]:
    """Each question's answer asked alone: what every batching must reproduce."""
    return {q: _answers(server, [q])[0] for q in QUESTIONS}


def _answers(server, instances, parameters=FEW, path=PREDICT) -> list[str]:
    status, body = server.predict(instances, parameters, path=path)
    assert status == 200, body
    assert len(body["predictions"]) == len(instances)
    return body["predictions"]


def test_routes_come_from_the_environment(server):
    assert server.call("GET", HEALTH) == (200, {"status": "ready"})
    status, body = server.call("GET", "/health")
    assert status == 404 and body["error"]["reason"] == "not_found"
    assert server.predict(["hi"], FEW, path="/predict")[0] == 404
    status, body = server.call("GET", PREDICT)
    assert (status, body["error"]["code"], body["error"]["reason"]) == (
        405,
        405,
        "method_not_allowed",
    )
    assert server.predict(["hi"], FEW, path=PREDICT)[0] == 200


def test_the_contract_is_what_vertex_is_told():
    spec = contract.container_spec("img@sha256:0")
    assert (spec["healthRoute"], spec["predictRoute"]) == ("/health", "/predict")
    assert spec["ports"] == [{"containerPort": 8080}]
    env = {contract.PORT_ENV: "9000", contract.PREDICT_ROUTE_ENV: "/p"}
    assert (contract.port(env), contract.predict_route(env), contract.health_route(env)) == (
        "9000",
        "/p",
        "/health",
    )


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
    assert answers[0] != ""  # guard: an empty answer would make the equalities vacuous
    assert answers[0] == answers[1] == answers[2]
    assert answers[3] != answers[0]


def test_max_new_tokens_bounds_the_answer(server, new_tokens):
    before = len(new_tokens)
    _answers(server, QUESTIONS, {"max_new_tokens": 3})
    assert new_tokens[before:] == [3]  # the tiny model never emits EOS this early


def test_without_max_new_tokens_an_answer_gets_what_the_context_leaves(server, new_tokens):
    long = "What is 2 + 3? " * 27  # 249 tokens of the 256 the tiny model attends over
    before = len(new_tokens)
    assert server.predict([long], path=PREDICT)[0] == 200
    assert new_tokens[before:] == [256 - 249]
    assert Generation().fitted(longest_prompt=10, context=256).max_new_tokens == 64
    assert (
        Generation(max_new_tokens=200).fitted(longest_prompt=10, context=256).max_new_tokens == 200
    )


def test_greedy_answers_do_not_depend_on_the_batch(server, singles):
    assert len(set(singles.values())) == len(QUESTIONS)  # guard: answers depend on the prompt
    assert _answers(server, QUESTIONS + QUESTIONS[:1]) == [*singles.values(), singles[QUESTIONS[0]]]


def test_sampling_parameters_are_accepted(server):
    answers = _answers(server, QUESTIONS, {"max_new_tokens": 4, "temperature": 1.5, "top_p": 0.9})
    assert all(isinstance(a, str) for a in answers)


def test_concurrent_requests_share_one_batch_and_get_the_answers_they_get_alone(loaded, singles):
    with serve_text(loaded) as (server, batches):
        results = line_up(server, batches, FIRST, [([q], FEW) for q in QUESTIONS])
    assert batches.sizes == [1, len(QUESTIONS)]
    assert [body["predictions"] for _, body in results[1:]] == [[singles[q]] for q in QUESTIONS]


def test_max_batch_size_one_serves_one_request_at_a_time(loaded, singles):
    with serve_text(loaded, max_batch_size=1) as (server, batches):
        requests = [([q], FEW) for q in QUESTIONS[:2]] + [(QUESTIONS, FEW)]
        results = line_up(server, batches, FIRST, requests)
    assert batches.sizes == [1, 1, 1, len(QUESTIONS)]  # a request is never split
    assert results[3][1]["predictions"] == list(singles.values())


def test_a_batch_takes_at_most_max_batch_size_instances(loaded):
    with serve_text(loaded, max_batch_size=2) as (server, batches):
        results = line_up(server, batches, FIRST, [([q], FEW) for q in QUESTIONS + QUESTIONS[:1]])
    assert batches.sizes == [1, 2, 2, 1]
    assert all(status == 200 for status, _ in results)


def test_requests_with_other_parameters_wait_for_their_own_batch(loaded, singles):
    three = {"max_new_tokens": 3}
    order = [(QUESTIONS[0], FEW), (QUESTIONS[1], three), (QUESTIONS[2], FEW), (QUESTIONS[3], three)]
    with serve_text(loaded) as (server, batches):
        results = line_up(server, batches, FIRST, [([q], p) for q, p in order])
        shorter = {q: _answers(server, [q], three, "/predict")[0] for q in QUESTIONS[1::2]}
    assert batches.sizes[:3] == [1, 2, 2]
    assert [p.max_new_tokens for _, p in batches.calls[1:3]] == [4, 3]  # the oldest group first
    answers = [body["predictions"][0] for _, body in results[1:]]
    expected = [singles[QUESTIONS[0]], shorter[QUESTIONS[1]]]
    assert answers == expected + [singles[QUESTIONS[2]], shorter[QUESTIONS[3]]]


def test_a_request_past_its_deadline_is_504_never_reaches_the_model_and_health_says_stalled(
    loaded,
):
    with serve_text(loaded, request_timeout_s=0.5) as (server, batches):
        pool = ThreadPoolExecutor(2)
        batches.hold()
        first = pool.submit(server.predict, [QUESTIONS[0]], FEW)
        assert batches.entered.wait(WAIT_S)
        late = pool.submit(server.predict, [QUESTIONS[1]], FEW)
        for answer in (first.result(timeout=WAIT_S), late.result(timeout=WAIT_S)):
            assert answer[0] == 504 and answer[1]["error"]["reason"] == "deadline_exceeded"
        wait_for(lambda: server.slot.batcher.busy_for() > 0.5, "the batch to overrun")
        status, health = server.call("GET", "/health")
        assert status == 503 and health["status"] == "stalled"
        batches.release()
        wait_for(lambda: server.call("GET", "/health")[0] == 200, "health to recover")
        assert _answers(server, [QUESTIONS[2]], path="/predict")
        pool.shutdown()
    assert batches.sizes == [1, 1]  # the held one and the last; the late one was dropped


def test_a_full_queue_is_503_with_retry_after_and_the_server_recovers(loaded):
    small = {"max_queued_instances": 2, "max_instances": 2, "max_inflight_requests": 3}
    with serve_text(loaded, **small) as (server, batches):
        pool = ThreadPoolExecutor(3)
        batches.hold()
        first = pool.submit(server.predict, [QUESTIONS[0]], FEW)
        assert batches.entered.wait(WAIT_S)
        second = pool.submit(server.predict, [QUESTIONS[1]], FEW)
        wait_for(lambda: server.slot.batcher.num_queued == 2, "the second request to queue")
        body = json.dumps({"instances": [QUESTIONS[2]], "parameters": FEW}).encode()
        status, answer, headers = server.exchange("POST", "/predict", body)
        assert (status, answer["error"]["reason"], headers["retry-after"]) == (
            503,
            "overloaded",
            "1",
        )
        batches.release()
        assert first.result(timeout=WAIT_S)[0] == second.result(timeout=WAIT_S)[0] == 200
        pool.shutdown()
    assert batches.sizes == [1, 1]


def test_requests_past_max_inflight_are_503_before_their_body_is_read(loaded):
    with serve_text(loaded, max_inflight_requests=1) as (server, batches):
        pool = ThreadPoolExecutor(1)
        batches.hold()
        first = pool.submit(server.predict, [QUESTIONS[0]], FEW)
        assert batches.entered.wait(WAIT_S)
        status, answer = server.predict([QUESTIONS[1]], FEW)
        assert (status, answer["error"]["reason"]) == (503, "overloaded")
        assert "MAX_INFLIGHT_REQUESTS" in answer["error"]["message"]
        batches.release()
        assert first.result(timeout=WAIT_S)[0] == 200
        pool.shutdown()


def test_health_is_503_until_the_model_has_loaded(tiny_model_dir):
    gate = threading.Event()

    def held_back(uri: str, *, limits) -> TextPredictor:
        assert gate.wait(timeout=WAIT_S)
        return TextPredictor.load(uri, limits=limits)

    with ThreadServer(create_app(tiny_model_dir, predictor_factory=held_back)) as running:
        assert running.call("GET", "/health") == (503, {"status": "loading"})
        status, answer = running.predict(["hi"], FEW)
        assert (status, answer["error"]["reason"]) == (503, "not_ready")
        assert "loading" in answer["error"]["message"]
        gate.set()
        assert running.wait_loaded() == (200, {"status": "ready"})
        assert running.predict(["hi"], FEW)[0] == 200


def test_health_is_503_failed_when_the_model_cannot_load(tmp_path):
    with ThreadServer(create_app(str(tmp_path / "missing"))) as running:
        status, answer = running.wait_loaded()
        assert (status, answer["status"]) == (503, "failed") and "no config.json" in answer["error"]
        status, answer = running.predict(["hi"], FEW)
        assert (status, answer["error"]["reason"]) == (503, "not_ready")
        assert "no config.json" in answer["error"]["message"]


def test_gs_model_uri_is_downloaded_and_served(gcs_bucket, tiny_model_dir, server, singles):
    uri = f"gs://{gcs_bucket}/run/model"
    storage.upload_dir(tiny_model_dir, uri)
    with ThreadServer(create_app(uri)) as running:
        assert running.wait_loaded() == (200, {"status": "ready"})
        assert _answers(running, QUESTIONS, path="/predict") == list(singles.values())


def test_lora_run_serves_the_merged_weights(tmp_path, tiny_model_dir, singles):
    root = tmp_path / "lora-run"
    shutil.copytree(tiny_model_dir, root / "merged")
    # The run's root holds only an adapter, which cannot load without its base model.
    (root / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "none"}))
    predictor = TextPredictor.load(str(root))
    assert predictor.model_dir == str(root / "merged")
    assert predictor.predict(QUESTIONS, FEW) == list(singles.values())


def test_local_server_runs_the_container_entrypoint(tiny_model_dir, singles):
    env = {contract.PREDICT_ROUTE_ENV: PREDICT, "LIFTOFF_SERVE_MAX_INSTANCES": "5"}
    with LocalServer(tiny_model_dir, env=env) as local:
        local.wait_healthy(timeout_s=WAIT_S)
        answer = local.predict(QUESTIONS, FEW)
        with pytest.raises(ServerError, match="parameters.top_p") as bad:
            local.predict(["hi"], {"top_p": 2})
        with pytest.raises(ServerError, match="the limit is 5") as many:
            local.predict(["hi"] * 6, FEW)
        process = local.process
    assert answer == {"predictions": list(singles.values())}
    assert (bad.value.status, bad.value.reason, many.value.status) == (400, "invalid_request", 413)
    assert process.poll() is not None  # stopped on leaving the block


def test_local_server_reports_a_server_that_exits():
    with LocalServer("") as local, pytest.raises(RuntimeError) as failed:
        local.wait_healthy(timeout_s=60)
    assert "exited (code 2)" in str(failed.value)
    assert "no model to serve" in str(failed.value)


def test_local_server_stops_waiting_when_the_model_fails_to_load(tmp_path):
    with LocalServer(str(tmp_path / "missing")) as local, pytest.raises(RuntimeError) as failed:
        local.wait_healthy(timeout_s=WAIT_S)
    assert "health answered 503" in str(failed.value) and "no config.json" in str(failed.value)


def test_main_without_a_model_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.delenv(contract.STORAGE_URI_ENV, raising=False)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no model to serve")


def test_a_bad_limit_setting_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("LIFTOFF_SERVE_MAX_BATCH_SIZE", "lots")
    assert main(["--model", "m"]) == 2
    err = capsys.readouterr().err
    assert err == "error: LIFTOFF_SERVE_MAX_BATCH_SIZE='lots' is invalid: must be an integer\n"
    monkeypatch.setenv("LIFTOFF_SERVE_MAX_BATCH_SIZE", "0")
    assert main(["--model", "m"]) == 2
    assert "LIFTOFF_SERVE_MAX_BATCH_SIZE=0 is invalid" in capsys.readouterr().err
    monkeypatch.setenv("LIFTOFF_SERVE_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("LIFTOFF_SERVE_MAX_QUEUED_INSTANCES", "10")
    assert main(["--model", "m"]) == 2
    assert "must be at least LIFTOFF_SERVE_MAX_INSTANCES (64)" in capsys.readouterr().err


def test_port_and_model_come_from_the_vertex_variables_and_the_host_is_loopback(monkeypatch):
    monkeypatch.setenv(contract.PORT_ENV, "9123")
    monkeypatch.setenv(contract.STORAGE_URI_ENV, "gs://b/model")
    args = parser().parse_args([])
    assert (args.port, args.model, args.host) == (9123, "gs://b/model", "127.0.0.1")
    monkeypatch.delenv(contract.PORT_ENV)
    assert parser().parse_args([]).port == 8080


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_a_gpu_the_model_serves_in_bf16_and_batches_answer_as_alone(tiny_model_dir):
    gpu = load_trained(tiny_model_dir)
    assert (gpu[0].device.type, gpu[0].dtype) == ("cuda", torch.bfloat16)
    with serve_text(gpu) as (server, batches):
        alone = {q: _answers(server, [q], path="/predict")[0] for q in QUESTIONS}
        results = line_up(server, batches, FIRST, [([q], FEW) for q in QUESTIONS])
    assert batches.sizes[-2:] == [1, len(QUESTIONS)]
    assert [body["predictions"] for _, body in results[1:]] == [[alone[q]] for q in QUESTIONS]
