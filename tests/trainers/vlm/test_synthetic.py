"""The shapes set: deterministic, and every answer is true of the pixels it is asked about."""

import base64
import io
import json
import random
from collections import Counter

import pytest
from PIL import Image

from trainers.common.records import record_key
from trainers.vlm.images import check_image_value
from trainers.vlm.synthetic import render, sample_instances, shapes_records

WHITE = (255, 255, 255)
# Written out here rather than imported, so a wrong colour table in the module fails the test.
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}


def _pixels(value: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(value["b64"]))).convert("RGB")


def _blobs(image: Image.Image) -> list[list[tuple[int, int, tuple]]]:
    """Connected (8-neighbour) groups of non-white pixels, each as (x, y, rgb) triples."""
    width, height = image.size
    raw = image.tobytes()
    colour = {
        (x, y): tuple(raw[3 * (y * width + x) : 3 * (y * width + x) + 3])
        for y in range(height)
        for x in range(width)
    }
    todo = {xy for xy, rgb in colour.items() if rgb != WHITE}
    blobs = []
    while todo:
        stack, blob = [todo.pop()], []
        while stack:
            x, y = stack.pop()
            blob.append((x, y, colour[x, y]))
            for near in [(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]:
                if near in todo:
                    todo.remove(near)
                    stack.append(near)
        blobs.append(blob)
    return blobs


def _shape(blob: list) -> str:
    """Tell the shapes apart by how much of their bounding box they fill."""
    xs, ys = [p[0] for p in blob], [p[1] for p in blob]
    fill = len(blob) / ((max(xs) - min(xs) + 1) * (max(ys) - min(ys) + 1))
    return "square" if fill > 0.95 else "circle" if fill > 0.7 else "triangle"


def _facts(image: Image.Image) -> tuple[int, str, str]:
    """(count, colour, shape) as read from the pixels alone."""
    blobs = _blobs(image)
    rgbs = Counter(rgb for blob in blobs for _, _, rgb in blob)
    ((dominant, _),) = rgbs.most_common(1)
    assert len(rgbs) == 1, rgbs  # solid fills, no anti-aliased edges
    colour = next(name for name, rgb in RGB.items() if rgb == dominant)
    shapes = {_shape(blob) for blob in blobs}
    assert len(shapes) == 1, shapes
    return len(blobs), colour, shapes.pop()


def test_the_same_seed_gives_the_same_records_and_another_seed_others():
    first = shapes_records(50, seed=3)
    assert first == shapes_records(50, seed=3)
    assert first != shapes_records(50, seed=4)
    assert shapes_records(80, seed=3)[:50] == first  # a longer set extends a shorter one
    assert json.loads(json.dumps(first)) == first  # plain JSON, ready for a JSONL file


def test_every_answer_and_caption_is_true_of_the_image():
    records = shapes_records(300, seed=0)
    kinds = Counter()
    for record in records:
        count, colour, shape = _facts(_pixels(record["image"]))
        if "caption" in record:
            kinds["caption"] += 1
            assert record["caption"] == f"{count} {colour} {shape}{'s' if count > 1 else ''}"
            continue
        question, answer = record["question"], record["answer"]
        if question.startswith("what colour"):
            kinds["colour"] += 1
            assert (question, answer) == (f"what colour is the {shape}?", colour)
        elif question.startswith("how many"):
            kinds["count"] += 1
            assert (question, answer) == (f"how many {shape}s are there?", str(count))
        else:
            kinds["shape"] += 1
            assert (question, answer) == ("what shape is in the image?", shape)
    assert min(kinds.values()) > 30 and len(kinds) == 4  # every kind was checked


def test_larger_images_scale_the_shapes():
    for size in (16, 64):
        image = render("circle", "yellow", 3, image_size=size, rng=random.Random(size))
        assert image.size == (size, size)
        assert _facts(image) == (3, "yellow", "circle")
        assert max(len(blob) for blob in _blobs(image)) > (size // 4) ** 2 * 0.7


def test_mix_of_questions_counts_and_captions_follows_the_settings():
    records = shapes_records(2000, seed=1, caption_fraction=0.3)
    captions = [r for r in records if "caption" in r]
    assert 0.27 < len(captions) / 2000 < 0.33
    vqa = [r for r in records if "question" in r]
    assert len(vqa) + len(captions) == 2000
    questions = Counter(r["question"].split(" ")[1] for r in vqa)  # colour / many / shape
    assert set(questions) == {"colour", "many", "shape"}
    assert all(0.29 < n / len(vqa) < 0.38 for n in questions.values()), questions
    counts = Counter(r["caption"][0] for r in captions)
    assert set(counts) == {"1", "2", "3"} and min(counts.values()) > len(captions) / 4
    assert len({record_key(r) for r in records}) == 2000  # no duplicates to dedupe away
    assert all(check_image_value(r["image"]) is None for r in records)
    assert not any("caption" in r for r in shapes_records(200, seed=1, caption_fraction=0.0))
    assert all("caption" in r for r in shapes_records(50, seed=1, caption_fraction=1.0))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="image_size"):
        shapes_records(10, seed=0, image_size=8)
    with pytest.raises(ValueError, match="caption_fraction"):
        shapes_records(10, seed=0, caption_fraction=1.5)
    with pytest.raises(ValueError, match="cannot render"):
        render("hexagon", "red", 1, image_size=32, rng=random.Random(0))


def test_sample_instances_are_fixed_valid_serving_instances():
    instances = sample_instances(3)
    assert instances == sample_instances(3) and len(instances) == 3
    assert instances[0]["prompt"] == "what colour is the square?"
    for instance in instances:
        assert set(instance) == {"image", "prompt"} and check_image_value(instance["image"]) is None
        count, _, shape = _facts(_pixels(instance["image"]))
        assert count == 1 and instance["prompt"] == f"what colour is the {shape}?"
    assert _pixels(sample_instances(1, image_size=48)[0]["image"]).size == (48, 48)
