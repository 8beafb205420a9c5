"""A tiny real Qwen3-VL and a batch of rendered scenes for the ARR-COC tests.

    from tests.support.tiny_qwen3_vl import scene_batch, tiny_qwen  # noqa: F401

    def test_x(tiny_qwen, scene_batch): ...   # shared by the session: treat them as read-only
    base = make_tiny_qwen()                   # a fresh one (about 2 s), e.g. to train

The debug preset's base model (`Qwen3VLForConditionalGeneration` built from a config: a 2-layer
vision tower with DeepStack, a 2-layer LM, a BPE tokenizer trained in-process on the scenes'
words, Qwen's image processor at 8-pixel patches). Its weights are seeded and widened so that
untrained logits still depend on the image; nothing is downloaded.
"""

from __future__ import annotations

import base64
import io

import pytest
import torch
from PIL import Image

from trainers.arr_coc.config import BaseConfig
from trainers.arr_coc.inputs import Batch, collate, encode
from trainers.arr_coc.qwen import Base, build_scratch
from trainers.arr_coc.scenes import scene_records, scene_texts

SEED = 0
WEIGHT_STD = 0.1  # the default 0.02 makes a 2-layer model's logits all but ignore its input
NUM_EXAMPLES = 4


def make_tiny_qwen(*, attn_implementation: str = "sdpa") -> Base:
    base = build_scratch(
        BaseConfig(attn_implementation=attn_implementation), texts=scene_texts(), seed=SEED
    )
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(SEED)
        for weight in base.model.parameters():
            if weight.dim() >= 2:
                weight.normal_(0.0, WEIGHT_STD)
    base.model.eval()
    return base


def decode_png(value: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(value["b64"])))


def make_batch(base: Base, records: list[dict]) -> Batch:
    examples = [
        encode(
            base,
            image=decode_png(r["image"]),
            question=r["question"],
            answer=r["answer"],
            mask=decode_png(r["mask"]) if "mask" in r else None,
        )
        for r in records
    ]
    return collate(examples, pad_id=base.tokenizer.pad_token_id)


@pytest.fixture(scope="session")
def tiny_qwen() -> Base:
    return make_tiny_qwen()


@pytest.fixture(scope="session")
def scene_batch(tiny_qwen) -> Batch:
    return make_batch(tiny_qwen, scene_records(NUM_EXAMPLES, seed=SEED))
