"""A preempted train step exits as its trainer did: Vertex sends SIGTERM before a spot VM goes,
the step passes it to the trainer, the trainer commits a checkpoint and exits 143, and the step
(the CustomJob's process) exits 143 as well, which Vertex restarts (exit 1 it would not).

.venv/bin/python -m pytest -q tests/components/test_train_preemption.py
"""

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from tests.support.trainer_runs import REPO, TINY, trainer_env
from trainers.common.checkpoint import committed_steps
from trainers.common.preemption import PREEMPTED_EXIT_CODE

pytestmark = pytest.mark.slow

# What the train component's body does, as its own process (the KFP executor of a CustomJob).
STEP = """
import sys
from components.train.task import train
train(argv=sys.argv[2:], output_dir=sys.argv[1] + "/model", checkpoint_dir=sys.argv[1] + "/ckpt")
"""


def test_sigterm_reaches_the_trainer_and_its_143_is_the_steps_exit_status(tmp_path):
    argv = [*TINY, "--max-steps", "100000", "--set", "checkpoint.every_steps=100000"]
    step = subprocess.Popen(
        [sys.executable, "-c", STEP, str(tmp_path), *argv],
        cwd=REPO,
        env=trainer_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the test can end every process it started
    )
    try:
        # Training has begun once the trainer logs a step; only the step's own process is
        # signalled, as Vertex signals the container's.
        for line in step.stdout:
            if line.startswith("step "):
                break
        step.send_signal(signal.SIGTERM)
        returncode = step.wait(timeout=300)
    finally:
        # Whatever is left of the session: nothing, unless the step failed to pass SIGTERM on
        # (its trainer would train on, holding the output open).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(step.pid, signal.SIGKILL)
    output = step.stdout.read()

    assert returncode == PREEMPTED_EXIT_CODE, output[-3000:]
    assert "exited with status 143" in output
    (saved,) = committed_steps(str(tmp_path / "ckpt"))  # the preemption checkpoint only
    assert saved >= 2
