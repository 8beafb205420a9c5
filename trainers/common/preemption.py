"""SIGTERM as a request to stop: Vertex sends it before a spot VM goes (30 s) or a job is cancelled.

The handler only sets a flag; the training loop checks it between steps, saves a committed
checkpoint and exits with PREEMPTED_EXIT_CODE so Vertex restarts the job, which then resumes.
"""

from __future__ import annotations

import signal

PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, what a process killed by SIGTERM reports


class Preempted(Exception):
    """Raised by the loop after the preemption checkpoint is committed."""


class StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
