"""kfp.local for tests: components run as subprocesses of this interpreter, as `liftoff run`
runs them, with every artifact under a temporary pipeline root."""

from __future__ import annotations

import pytest

# Small enough for seconds per step; the same overrides reach prepare_data and train.
TINY_OVERRIDES = [
    "data.synthetic_examples=600",
    "data.seq_len=128",
    "model.max_position_embeddings=128",
    "train.exact_match_examples=0",
    "train.eval_every=0",
    "train.log_every=5",
    "train.threads=1",
]


@pytest.fixture(scope="module")
def kfp_local(tmp_path_factory):
    from kfp import local

    root = tmp_path_factory.mktemp("pipeline-root")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root
