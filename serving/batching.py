"""Dynamic batching: concurrent requests gathered into one generate call on one thread.

    batcher = Batcher(predictor.generate, max_batch_size=32, window_s=0.005, max_queued=256)
    batcher.start()
    future = batcher.submit(items, params, deadline=time.monotonic() + 60)
    predictions = future.result()            # this request's share of a batch's answers

One thread owns the model (it is not thread-safe, and a batch already uses every core or the
whole GPU). It takes the oldest waiting request and every other waiting request with the same
generation parameters, oldest first, up to `max_batch_size` instances; a request is never split,
and one larger than the maximum runs alone. When the batch is not full and `arriving()` says
more requests are on their way (the server has accepted them and is still reading or checking
them), the oldest request waits at most `window_s` for them. Under load, requests queue up
while the previous batch runs, so no one waits; a request alone never waits. `max_batch_size=1`
is the one-request-at-a-time server (the benchmark's baseline).

Bounded: at most `max_queued` instances are admitted and unanswered (`submit` refuses more
with a 503); a request whose deadline has passed, or whose future was cancelled, is dropped
before it reaches the model. If a batch of several requests fails, each is retried alone, so
one request that breaks the model does not fail the others. `stop()` answers whatever still
waits with a 503.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from serving import errors
from serving.errors import RequestError
from serving.limits import ENV_PREFIX
from serving.params import Generation


@dataclass(eq=False)
class Pending:
    items: list
    params: Generation
    deadline: float
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self,
        generate: Callable[[list, Generation], list],  # one prediction per item
        *,
        max_batch_size: int,
        window_s: float,
        max_queued: int,
        arriving: Callable[[], int] = lambda: 1,
    ) -> None:
        self.generate = generate
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.arriving = arriving  # requests on their way to `submit`; by default always some
        self.max_queued = max_queued
        self.num_batches = 0
        self._queue: collections.deque[Pending] = collections.deque()
        self._num_queued = 0  # instances admitted and not answered yet
        self._cond = threading.Condition()
        self._stopped = False
        self._busy_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def wake(self) -> None:
        """Look again at `arriving()`: call it when a request stops being on its way."""
        with self._cond:
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def num_queued(self) -> int:
        """Instances admitted and not answered yet (the running batch's included)."""
        return self._num_queued

    def busy_for(self) -> float:
        """Seconds the batch now running has taken (0 when idle)."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def submit(self, items: list, params: Generation, *, deadline: float) -> Future:
        """Queue a request's prepared items; the future resolves to one answer per item."""
        with self._cond:
            if self._num_queued + len(items) > self.max_queued:
                raise RequestError(
                    f"the server is at capacity ({self._num_queued} instances waiting; the limit"
                    f" is {self.max_queued}, {ENV_PREFIX}MAX_QUEUED_INSTANCES); retry shortly",
                    status=503,
                    reason=errors.OVERLOADED,
                )
            pending = Pending(items=items, params=params, deadline=deadline)
            self._queue.append(pending)
            self._num_queued += len(items)
            self._cond.notify()
        return pending.future

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._busy_since = time.monotonic()
            try:
                self._execute(batch)
            finally:
                self._busy_since = None
                with self._cond:
                    self._num_queued -= sum(len(p.items) for p in batch)
        with self._cond:  # stopped: nothing more will run
            for pending in self._queue:
                if pending.future.set_running_or_notify_cancel():
                    pending.future.set_exception(_stopping_error())
            self._queue.clear()

    def _next_batch(self) -> list[Pending] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            params, closes = self._queue[0].params, self._queue[0].arrived + self.window_s
            while self._size_of(params) < self.max_batch_size and not self._stopped:
                remaining = closes - time.monotonic()
                if remaining <= 0 or not self.arriving():
                    break
                self._cond.wait(remaining)
            return None if self._stopped else self._take(params)

    def _size_of(self, params: Generation) -> int:
        return sum(len(p.items) for p in self._queue if p.params == params)

    def _take(self, params: Generation) -> list[Pending]:
        """The oldest request and the next ones sharing its parameters that still fit."""
        batch, size = [], 0
        for pending in list(self._queue):
            if pending.params != params:
                continue
            if batch and size + len(pending.items) > self.max_batch_size:
                break
            batch.append(pending)
            size += len(pending.items)
            self._queue.remove(pending)
        return batch

    def _execute(self, batch: list[Pending]) -> None:
        now = time.monotonic()
        live = []
        for pending in batch:
            if not pending.future.set_running_or_notify_cancel():
                continue  # its client has stopped waiting
            if pending.deadline < now:
                pending.future.set_exception(_deadline_error())
                continue
            live.append(pending)
        if live:
            self._generate(live)

    def _generate(self, live: list[Pending]) -> None:
        items = [item for pending in live for item in pending.items]
        try:
            answers = self.generate(items, live[0].params)
            self.num_batches += 1
        except Exception as err:
            if len(live) > 1:  # find the request that breaks it; the others still get answers
                for pending in live:
                    self._generate([pending])
                return
            traceback.print_exc()
            live[0].future.set_exception(err)
            return
        start = 0
        for pending in live:
            pending.future.set_result(answers[start : start + len(pending.items)])
            start += len(pending.items)


def _stopping_error() -> RequestError:
    return RequestError("the server is stopping", status=503, reason=errors.NOT_READY)


def _deadline_error() -> RequestError:
    return RequestError(
        f"the request's deadline passed before its turn ({ENV_PREFIX}REQUEST_TIMEOUT_S)",
        status=504,
        reason=errors.DEADLINE_EXCEEDED,
    )
