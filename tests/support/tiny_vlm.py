"""A small trained VLM directory, as `python -m trainers.vlm --preset debug` writes it.

    from tests.support.tiny_vlm import tiny_vlm_dir  # noqa: F401

    def test_serve(tiny_vlm_dir): ...     # one directory per test session (about 15 s to train)

The debug preset cut to 150 steps on 1200 rendered-shapes records: enough that it answers
colour questions, so a served answer can be checked against the picture; nothing downloaded.
"""

from __future__ import annotations

import pytest

from tests.support.trainer_runs import run_trainer

STEPS = 150
ARGS = [
    "--preset",
    "debug",
    "--max-steps",
    str(STEPS),
    "--set",
    "data.synthetic_examples=1200",
    "--set",
    "train.eval_every=0",
    "--set",
    "train.exact_match_examples=0",
    "--set",
    "checkpoint.every_steps=0",
    "--set",
    "wandb.enabled=false",
]


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("tiny-vlm")
    done = run_trainer(
        [*ARGS, "--output-dir", str(out / "model"), "--checkpoint-dir", str(out / "ckpt")],
        module="trainers.vlm",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return str(out / "model")
