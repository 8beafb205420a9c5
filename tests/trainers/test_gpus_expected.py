"""A job whose machine has GPUs never trains on the CPU: with LIFTOFF_GPUS_PER_NODE (set by the
vertex target's CustomJob from the hardware profile) above what CUDA sees, the trainer stops at
once with one line, before it builds a model or writes anything.

.venv/bin/python -m pytest -q tests/trainers/test_gpus_expected.py
"""

import pytest
import torch

from tests.support.trainer_runs import TINY, run_trainer, trainer_env
from trainers.common.distributed import GPUS_ENV, require_gpus


def test_a_gpu_job_without_cuda_stops_at_once_with_one_line(tmp_path):
    # Every trainer starts with the same relaunch (trainers/common/entrypoint.py), which checks.
    expected = torch.cuda.device_count() + 1  # more than this machine has, GPU or not
    out = ["--output-dir", str(tmp_path / "model"), "--checkpoint-dir", str(tmp_path / "ckpt")]

    done = run_trainer([*TINY, *out], env=trainer_env(**{GPUS_ENV: str(expected)}))

    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: this node should have {expected} GPU(s) ({GPUS_ENV})")
    assert "not training on the CPU" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("env", [{}, {GPUS_ENV: ""}, {GPUS_ENV: "0"}])
def test_a_cpu_job_goes_on(env):
    require_gpus(env)  # returns: nothing expected
