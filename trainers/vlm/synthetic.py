"""The debug preset's image set: rendered shapes with questions about them, made on the fly.

    python -m trainers.vlm.synthetic 100 --seed 0 > shapes.jsonl   # look at some records

    records = shapes_records(6000, seed=0)   # [{"image": {"b64": PNG}, "question", "answer"}, ...]

Each image is a white square holding 1-3 copies of one shape ("square", "circle", "triangle")
in one colour ("red", "green", "blue", "yellow"), drawn apart from each other with no
anti-aliasing, so every answer is a plain fact about the pixels: the colour, the number of
blobs, the shape. A tiny VLM can learn it on a CPU in minutes, and exact match on held-out
records shows whether the image reached the language model at all. Every record is distinct,
so a split by content puts no record in both train and eval.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from PIL import Image, ImageDraw

from trainers.common.config import ConfigError
from trainers.vlm.images import b64encode, png_bytes

SHAPES = ("square", "circle", "triangle")
# Pure primaries (and red + green) on white: the colour name is never a judgement call.
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
QUESTIONS = (
    "what colour is the {shape}?",
    "how many {shape}s are there?",
    "what shape is in the image?",
)
MAX_COUNT = 3
MIN_IMAGE_SIZE = 16  # below this three shapes and the gaps between them do not fit
GAP = 2  # white pixels at least between two shapes, so each is its own connected blob
WHITE = (255, 255, 255)


def shape_side(image_size: int) -> int:
    return image_size // 4


def shapes_records(
    num_examples: int, *, seed: int, image_size: int = 32, caption_fraction: float = 0.2
) -> list[dict]:
    """`num_examples` distinct VQA and caption records, the same for the same arguments."""
    _check_size(image_size)
    if not 0.0 <= caption_fraction <= 1.0:
        raise ValueError(f"caption_fraction={caption_fraction!r} is invalid: must be in [0, 1]")
    rng = random.Random(seed)
    records, seen = [], set()
    while len(records) < num_examples:
        record = _record(rng, image_size=image_size, caption_fraction=caption_fraction)
        key = (record["image"]["b64"], record.get("question"), record.get("caption"))
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


def _record(rng: random.Random, *, image_size: int, caption_fraction: float) -> dict:
    kind, colour = rng.choice(SHAPES), rng.choice(tuple(COLOURS))
    count = rng.randint(1, MAX_COUNT)
    image = {
        "b64": b64encode(png_bytes(render(kind, colour, count, image_size=image_size, rng=rng)))
    }
    if rng.random() < caption_fraction:
        return {"image": image, "caption": f"{count} {colour} {kind}{'s' if count > 1 else ''}"}
    template = rng.choice(QUESTIONS)
    answer = {0: colour, 1: str(count), 2: kind}[QUESTIONS.index(template)]
    return {"image": image, "question": template.format(shape=kind), "answer": answer}


def render(
    kind: str, colour: str, count: int, *, image_size: int, rng: random.Random
) -> Image.Image:
    """A white RGB image with `count` solid `colour` `kind`s at random places, none touching."""
    _check_size(image_size)
    if kind not in SHAPES or colour not in COLOURS or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"cannot render {count} {colour} {kind}: see SHAPES, COLOURS, MAX_COUNT")
    side = shape_side(image_size)
    image = Image.new("RGB", (image_size, image_size), WHITE)
    draw = ImageDraw.Draw(image)
    for x, y in _corners(count, side=side, image_size=image_size, rng=rng):
        _draw(draw, kind, (x, y, x + side - 1, y + side - 1), COLOURS[colour])
    return image


def _corners(
    count: int, *, side: int, image_size: int, rng: random.Random
) -> list[tuple[int, int]]:
    """Top-left corners of `count` boxes of `side` pixels at least GAP apart."""
    span, pitch = image_size - side, side + GAP
    while True:  # rarely, early boxes leave no room for the last one: start again
        placed: list[tuple[int, int]] = []
        for _ in range(20 * count):
            x, y = rng.randint(0, span), rng.randint(0, span)
            if all(abs(x - px) >= pitch or abs(y - py) >= pitch for px, py in placed):
                placed.append((x, y))
                if len(placed) == count:
                    return placed


def _draw(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box  # inclusive corners, as PIL draws them
    if kind == "square":
        draw.rectangle(box, fill=fill)
    elif kind == "circle":
        draw.ellipse(box, fill=fill)
    else:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)


def sample_instances(num: int = 2, *, image_size: int = 32) -> list[dict]:
    """Serving-form instances `{"image": {"b64"}, "prompt"}` for a deploy check; fixed content."""
    rng = random.Random(0)
    instances = []
    for i in range(num):
        kind, colour = SHAPES[i % len(SHAPES)], tuple(COLOURS)[i % len(COLOURS)]
        image = render(kind, colour, 1, image_size=image_size, rng=rng)
        instances.append(
            {"image": {"b64": b64encode(png_bytes(image))}, "prompt": f"what colour is the {kind}?"}
        )
    return instances


def _check_size(image_size: int) -> None:
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"image_size={image_size!r} is invalid: must be >= {MIN_IMAGE_SIZE}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainers.vlm.synthetic")
    parser.add_argument("num_examples", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args(argv)
    for record in shapes_records(args.num_examples, seed=args.seed, image_size=args.image_size):
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
