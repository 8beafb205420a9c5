"""The batcher on its own, with a generate function that answers each item with its text and
fails on items marked "boom" (no model: what is checked is which batches run and who gets what).

    .venv/bin/python -m pytest -q tests/serving/test_batching.py
"""

from __future__ import annotations

import threading
import time

import pytest

from serving.batching import Batcher
from serving.errors import RequestError
from serving.params import Generation

GREEDY = Generation(max_new_tokens=4)
WAIT_S = 60


class Model:
    """Answers "item!" per item and raises on "boom"; after `hold()`, calls wait for `release()`
    (`entered` is set once one does)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __call__(self, items: list[str], params: Generation) -> list[str]:
        self.batches.append(list(items))
        if not self.gate.is_set():
            self.entered.set()
            assert self.gate.wait(WAIT_S)
        if "boom" in items:
            raise RuntimeError("the model broke")
        return [f"{item}!" for item in items]


@pytest.fixture
def model():
    return Model()


@pytest.fixture
def batcher(model):
    running = Batcher(model, max_batch_size=8, window_s=0.001, max_queued=6).start()
    yield running
    model.release()
    running.stop()


def _submit(batcher, items: list[str], *, timeout_s: float = WAIT_S):
    return batcher.submit(items, GREEDY, deadline=time.monotonic() + timeout_s)


def _behind_a_held_batch(model, batcher) -> object:
    model.hold()
    first = _submit(batcher, ["first"])
    assert model.entered.wait(WAIT_S)
    return first


def test_one_failing_request_does_not_fail_the_others_in_its_batch(model, batcher):
    first = _behind_a_held_batch(model, batcher)
    futures = [_submit(batcher, items) for items in (["a"], ["boom"], ["b", "c"])]
    model.release()
    assert first.result(WAIT_S) == ["first!"]
    assert futures[0].result(WAIT_S) == ["a!"]
    with pytest.raises(RuntimeError, match="the model broke"):
        futures[1].result(WAIT_S)
    assert futures[2].result(WAIT_S) == ["b!", "c!"]
    # Tried together first, then each alone.
    assert model.batches == [["first"], ["a", "boom", "b", "c"], ["a"], ["boom"], ["b", "c"]]


def test_a_cancelled_or_expired_request_never_reaches_the_model(model, batcher):
    first = _behind_a_held_batch(model, batcher)
    cancelled = _submit(batcher, ["gone"])
    expired = _submit(batcher, ["late"], timeout_s=0)
    kept = _submit(batcher, ["kept"])
    assert cancelled.cancel()
    model.release()
    assert first.result(WAIT_S) == ["first!"] and kept.result(WAIT_S) == ["kept!"]
    with pytest.raises(RequestError) as late:
        expired.result(WAIT_S)
    assert (late.value.status, late.value.reason) == (504, "deadline_exceeded")
    assert model.batches == [["first"], ["kept"]]


def test_admission_stops_at_max_queued_and_resumes_when_answered(model, batcher):
    first = _behind_a_held_batch(model, batcher)
    waiting = _submit(batcher, ["a", "b", "c", "d", "e"])  # 6 of 6 admitted
    with pytest.raises(RequestError) as full:
        _submit(batcher, ["f"])
    assert (full.value.status, full.value.reason) == (503, "overloaded")
    assert "6 instances waiting" in str(full.value)
    model.release()
    assert waiting.result(WAIT_S) == ["a!", "b!", "c!", "d!", "e!"] and first.result(WAIT_S)
    assert _submit(batcher, ["f"]).result(WAIT_S) == ["f!"]


def test_a_full_batch_goes_at_once_and_stop_answers_what_waits_with_503(model):
    # An hour of window: a full batch still goes at once; a lone request waits for company.
    batcher = Batcher(model, max_batch_size=2, window_s=3600, max_queued=8).start()
    assert _submit(batcher, ["a", "b"]).result(WAIT_S) == ["a!", "b!"]
    lone = _submit(batcher, ["c"])
    batcher.stop()
    with pytest.raises(RequestError) as stopped:
        lone.result(WAIT_S)
    assert (stopped.value.status, str(stopped.value)) == (503, "the server is stopping")
    assert model.batches == [["a", "b"]] and not batcher.alive


def test_a_batch_waits_only_for_requests_on_their_way(model):
    on_the_way = [1]
    batcher = Batcher(
        model, max_batch_size=8, window_s=3600, max_queued=8, arriving=lambda: on_the_way[0]
    ).start()
    try:
        first = _submit(batcher, ["a"])  # one more is on its way: the batch waits for it
        second = _submit(batcher, ["b"])
        on_the_way[0] = 0
        batcher.wake()
        assert (first.result(WAIT_S), second.result(WAIT_S)) == (["a!"], ["b!"])
        assert _submit(batcher, ["c"]).result(WAIT_S) == ["c!"]  # nothing coming: no wait
    finally:
        batcher.stop()
    assert model.batches == [["a", "b"], ["c"]]
