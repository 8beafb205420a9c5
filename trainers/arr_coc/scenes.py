"""The debug data: rendered scenes of several objects, each question about one of them, with
that object's mask, so relevance matters and can be measured.

    python -m trainers.arr_coc.scenes 100 --seed 0 > scenes.jsonl        # look at some
    python -m trainers.arr_coc.scenes 100 --hard > hard.jsonl            # stage 3's examples

    records = scene_records(2000, seed=0)   # [{"image", "question", "answer", "mask"}, ...]

A scene is a white square with 3 objects of different shapes, apart from each other. A
question names one object by its shape and asks its colour ("what colour is the triangle?"), or
(`questions=("colour", "shape")`) by its colour and asks its shape ("what shape is the red
object?"); the mask is that object's pixels. Hard scenes (stage 3) hold 4 smaller objects and
grey clutter (strokes and dots: edges that are no object), so edge salience alone no longer
finds the referred one.

The debug sets (NORMAL, HARD) colour only the referred object; the others are grey. Measured
on 2 CPU cores: with every object coloured a from-scratch tiny Qwen3-VL stays at the question
prior (about 0.2 exact match) for 700 steps, since answering needs shape bound to colour across
objects, while with grey distractors it reaches 0.99 in 100 steps (about 15 s). A real Qwen3-VL
binds; `BINDING` is the all-coloured set with both question kinds, for real presets.

Images and masks are PNGs inline (`{"b64": ...}`), the form every reader here accepts. Every
record is distinct, so a split by content puts none in both train and eval.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import sys
from dataclasses import dataclass

from PIL import Image, ImageDraw

SHAPES = ("square", "circle", "triangle", "diamond")
# Saturated colours far apart in hue, on white: naming them is never a judgement call.
COLOURS = {
    "red": (230, 25, 25),
    "green": (20, 170, 20),
    "blue": (25, 60, 230),
    "yellow": (240, 220, 0),
    "purple": (140, 30, 180),
    "orange": (250, 130, 0),
}
CLUTTER = (120, 120, 120)  # grey: never an answer
DISTRACTOR = (150, 150, 150)  # grey objects: there, salient, never asked about
WHITE = (255, 255, 255)
GAP = 3  # pixels at least between two objects
QUESTIONS = {"colour": "what colour is the {shape}?", "shape": "what shape is the {colour} object?"}


@dataclass(frozen=True, kw_only=True)
class SceneSpec:
    image_size: int = 128
    num_objects: int = 3
    min_side: int = 20
    max_side: int = 30
    num_clutter: int = 0
    grey_distractors: bool = True  # only the referred object is coloured
    questions: tuple[str, ...] = ("colour",)


NORMAL = SceneSpec()
HARD = SceneSpec(num_objects=4, min_side=16, max_side=22, num_clutter=12)
BINDING = SceneSpec(grey_distractors=False, questions=("colour", "shape"))


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 inclusive, as PIL draws


def scene_records(num_records: int, *, seed: int, spec: SceneSpec = NORMAL) -> list[dict]:
    """`num_records` distinct records, the same for the same arguments."""
    _check(spec)
    rng = random.Random(seed)
    records, seen = [], set()
    while len(records) < num_records:
        record = _record(rng, spec)
        key = (record["image"]["b64"], record["question"])
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


def _record(rng: random.Random, spec: SceneSpec) -> dict:
    things = _place(rng, spec)
    image = render(things, spec=spec, rng=rng)
    target = things[0] if spec.grey_distractors else rng.choice(things)
    kind = rng.choice(spec.questions)
    question = QUESTIONS[kind].format(shape=target.shape, colour=target.colour)
    answer = target.colour if kind == "colour" else target.shape
    return {
        "image": {"b64": _png_b64(image)},
        "question": question,
        "answer": answer,
        "mask": {"b64": _png_b64(mask_of(target, image_size=spec.image_size))},
    }


def _place(rng: random.Random, spec: SceneSpec) -> list[Thing]:
    """Objects of distinct shapes and distinct colours at boxes that keep GAP apart."""
    shapes = rng.sample(SHAPES, spec.num_objects)
    colours = rng.sample(tuple(COLOURS), spec.num_objects)
    while True:  # rarely the first boxes leave no room for the last: start again
        boxes: list[tuple[int, int, int, int]] = []
        for _ in range(50 * spec.num_objects):
            side = rng.randint(spec.min_side, spec.max_side)
            x, y = (rng.randint(0, spec.image_size - side) for _ in range(2))
            box = (x, y, x + side - 1, y + side - 1)
            if all(_apart(box, other) for other in boxes):
                boxes.append(box)
                if len(boxes) == spec.num_objects:
                    return [Thing(s, c, b) for s, c, b in zip(shapes, colours, boxes, strict=True)]


def _apart(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[2] + GAP < b[0] or b[2] + GAP < a[0] or a[3] + GAP < b[1] or b[3] + GAP < a[1]


def render(things: list[Thing], *, spec: SceneSpec, rng: random.Random) -> Image.Image:
    """The scene: clutter first, the objects over it, no anti-aliasing."""
    image = Image.new("RGB", (spec.image_size, spec.image_size), WHITE)
    draw = ImageDraw.Draw(image)
    for _ in range(spec.num_clutter):
        _clutter(draw, rng, spec.image_size)
    for i, thing in enumerate(things):
        grey = spec.grey_distractors and i > 0
        _draw(draw, thing.shape, thing.box, DISTRACTOR if grey else COLOURS[thing.colour])
    return image


def _clutter(draw: ImageDraw.ImageDraw, rng: random.Random, size: int) -> None:
    x, y = rng.randrange(size), rng.randrange(size)
    if rng.random() < 0.5:
        dx, dy = rng.randint(-12, 12), rng.randint(-12, 12)
        draw.line((x, y, x + dx, y + dy), fill=CLUTTER, width=1)
    else:
        draw.ellipse((x, y, x + 2, y + 2), fill=CLUTTER)


def _draw(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (x1, y1), (cx, y0)], fill=fill)
    else:
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)


def mask_of(thing: Thing, *, image_size: int) -> Image.Image:
    """The object's own pixels, 255 on 0, drawn exactly as in the scene."""
    mask = Image.new("L", (image_size, image_size), 0)
    _draw(ImageDraw.Draw(mask), thing.shape, thing.box, 255)
    return mask


def _png_b64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def scene_texts() -> list[str]:
    """Every question and answer the scenes can hold (a tokenizer's training text)."""
    texts = [QUESTIONS["colour"].format(shape=s) for s in SHAPES]
    texts += [QUESTIONS["shape"].format(colour=c) for c in COLOURS]
    return texts + list(SHAPES) + list(COLOURS)


def _check(spec: SceneSpec) -> None:
    unknown = set(spec.questions) - set(QUESTIONS)
    if not spec.questions or unknown:
        raise ValueError(f"questions={spec.questions!r} is invalid: choose from {tuple(QUESTIONS)}")
    limit = min(len(SHAPES), len(COLOURS))
    if not 1 <= spec.num_objects <= limit:
        raise ValueError(f"num_objects={spec.num_objects} is invalid: must be in [1, {limit}]")
    if not 4 <= spec.min_side <= spec.max_side <= spec.image_size // 2:
        raise ValueError(
            f"object sides [{spec.min_side}, {spec.max_side}] are invalid: need "
            f"4 <= min_side <= max_side <= image_size / 2 = {spec.image_size // 2}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainers.arr_coc.scenes")
    parser.add_argument("num_records", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard", action="store_true", help="stage 3's cluttered, small objects")
    args = parser.parse_args(argv)
    spec = HARD if args.hard else NORMAL
    for record in scene_records(args.num_records, seed=args.seed, spec=spec):
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
