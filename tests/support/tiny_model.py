"""A tiny, untrained model directory shaped like the one `python -m trainers.llm` writes.

    from tests.support.tiny_model import make_tiny_model_dir, tiny_model_dir  # noqa: F401

    def test_serve(tiny_model_dir): ...          # one directory per test session
    make_tiny_model_dir(str(tmp_path / "model"))  # a fresh one (about a second)

The debug preset's Llama (with 2 layers instead of 4, for speed), a tokenizer trained
in-process on the synthetic arithmetic records, HF `save_pretrained` safetensors and
`training_metadata.json`. Weights are seeded (so every build is identical) and untrained;
nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from trainers.common.config import to_dict
from trainers.common.outputs import METADATA_FILE
from trainers.llm.presets import get_preset
from trainers.llm.synthetic import arithmetic_records
from trainers.lm.model import build_model
from trainers.lm.tokenizer import corpus_texts, train_tokenizer

NUM_LAYERS = 2
# A default-initialised (std 0.02) model answers every prompt with the same newline; wider
# weights make greedy answers depend on the prompt, so tests comparing answers can fail.
WEIGHT_STD = 0.2
NUM_RECORDS = 500  # enough text for the tokenizer to learn the arithmetic vocabulary
SEED = 0


def make_tiny_model_dir(path: str, *, num_layers: int = NUM_LAYERS) -> str:
    """Write the tiny model directory to `path` (created if missing) and return `path`;
    `num_layers=4` is the debug preset's (the demo's) full depth."""
    import torch

    cfg = get_preset("debug")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_layers=num_layers))
    tokenizer = train_tokenizer(
        corpus_texts(arithmetic_records(NUM_RECORDS)), vocab_size=cfg.model.vocab_size
    )
    # Forked so the caller's global RNG stream is the same with or without this call.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = build_model(cfg.model, vocab_size=len(tokenizer))
        with torch.no_grad():
            for weight in model.parameters():
                if weight.dim() >= 2:  # matrices and embeddings; norms keep their ones
                    weight.normal_(0.0, WEIGHT_STD)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    meta = {"config": to_dict(cfg), "steps": 0, "tokens_seen": 0, "world_size": 1, "final": {}}
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tiny model directory shared by the session's tests (treat it as read-only)."""
    return make_tiny_model_dir(str(tmp_path_factory.mktemp("tiny-model")))
