"""Writes the sample files in examples/ (a test checks they are what this writes):

    .venv/bin/python examples/generate.py

    llm/arithmetic.jsonl   prompt/response records: small sums and differences
    llm/chat.jsonl         chat records: a system turn, then one or two user/assistant turns
    vlm/vqa.jsonl          image-question-answer records, with captions, naming images/*.png
    vlm/images/*.png       rendered shapes (1-3 of one shape in one colour on white)
    vlm/shape.png          a red square, for the README's `curl` to a served VLM

The records follow the formats the trainers read (README: "Data"); the recipes beside them
(`recipe.yaml`) are written by hand.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script from a checkout

from trainers.llm.synthetic import arithmetic_records  # noqa: E402
from trainers.vlm.images import png_bytes  # noqa: E402
from trainers.vlm.synthetic import COLOURS, MAX_COUNT, QUESTIONS, SHAPES, render  # noqa: E402

NUM_ARITHMETIC = 2000
NUM_CHATS = 400
NUM_IMAGES = 12
IMAGE_SIZE = 32
SYSTEM = "You are a calculator. Answer with the number only."


def files() -> dict[str, bytes]:
    """Every generated file's path under examples/ and its bytes."""
    out = {"llm/arithmetic.jsonl": _jsonl(arithmetic_records(NUM_ARITHMETIC, seed=1))}
    out["llm/chat.jsonl"] = _jsonl(_chats(NUM_CHATS, seed=2))
    images, records = _vqa(NUM_IMAGES, seed=3)
    out.update(images)
    out["vlm/vqa.jsonl"] = _jsonl(records)
    square = render("square", "red", 1, image_size=IMAGE_SIZE, rng=random.Random(0))
    out["vlm/shape.png"] = png_bytes(square)
    return out


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _chats(num: int, *, seed: int) -> list[dict]:
    """Chats over distinct questions: a system turn, then one or two exchanges."""
    pairs = arithmetic_records(2 * num, seed=seed)
    rng = random.Random(seed)
    chats = []
    for i in range(num):
        turns = [pairs[2 * i]] + ([pairs[2 * i + 1]] if rng.random() < 0.3 else [])
        messages = [{"role": "system", "content": SYSTEM}]
        for turn in turns:
            messages.append({"role": "user", "content": turn["prompt"]})
            messages.append({"role": "assistant", "content": turn["response"]})
        chats.append({"messages": messages})
    return chats


def _vqa(num_images: int, *, seed: int) -> tuple[dict[str, bytes], list[dict]]:
    """`num_images` PNGs and, for each, every question about it and a caption."""
    rng = random.Random(seed)
    images, records = {}, []
    for i in range(num_images):
        kind, colour = SHAPES[i % len(SHAPES)], tuple(COLOURS)[i % len(COLOURS)]
        count = rng.randint(1, MAX_COUNT)
        name = f"images/{i:02d}-{count}-{colour}-{kind}.png"
        image = render(kind, colour, count, image_size=IMAGE_SIZE, rng=rng)
        images[f"vlm/{name}"] = png_bytes(image)
        for template, answer in zip(QUESTIONS, (colour, str(count), kind), strict=True):
            records.append(
                {"image": name, "question": template.format(shape=kind), "answer": answer}
            )
        plural = "s" if count > 1 else ""
        records.append({"image": name, "caption": f"{count} {colour} {kind}{plural}"})
    return images, records


def main() -> None:
    for path, data in files().items():
        target = HERE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"wrote examples/{path} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
