"""Serving a VLM: instances with an image (inline base64 or gs://) and a prompt, on the real
server over loopback, answered as the trained model answers in-process. Bad images and
prompts are in test_probe.py.

    OMP_NUM_THREADS=1 python -m pytest -q tests/serving/test_vision.py
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from serving.server import create_app
from serving.vision import VisionPredictor
from tests.serving.servers import Batches, ThreadServer, line_up
from trainers.common import storage
from trainers.vlm.synthetic import COLOURS, sample_instances

FEW = {"max_new_tokens": 6}


@pytest.fixture(scope="module")
def served(tiny_vlm_dir):
    """The server of the tiny VLM and its batches."""
    holder = {}

    def factory(uri: str, *, limits) -> VisionPredictor:
        predictor = VisionPredictor.load(uri, limits=limits)
        holder["batches"] = Batches(predictor)
        return predictor

    with ThreadServer(create_app(tiny_vlm_dir, predictor_factory=factory)) as running:
        assert running.wait_loaded("/health") == (200, {"status": "ready"})
        yield running, holder["batches"]


@pytest.fixture(scope="module")
def server(served):
    return served[0]


def _colour_in(instance: dict) -> str:
    """The colour name of the shape in an instance's picture, read from its pixels."""
    image = Image.open(io.BytesIO(base64.b64decode(instance["image"]["b64"]))).convert("RGB")
    pixels = [image.getpixel((x, y)) for x in range(image.width) for y in range(image.height)]
    shape = [p for p in pixels if p != (255, 255, 255)]
    assert shape, "the picture has a shape in it"
    return next(name for name, rgb in COLOURS.items() if rgb == max(set(shape), key=shape.count))


def test_image_instances_get_the_colour_of_the_shape_in_the_picture(server):
    instances = sample_instances(4)
    status, body = server.predict(instances, FEW, path="/predict")
    assert status == 200, body
    expected = [_colour_in(i) for i in instances]
    assert len(set(expected)) == 4  # guard: four different answers, so no constant reply passes
    assert body["predictions"] == expected


def test_served_answers_equal_in_process_answers(server, tiny_vlm_dir):
    instances = [{**i, "prompt": "how many squares are there?"} for i in sample_instances(3)]
    status, body = server.predict(instances, FEW, path="/predict")
    local = VisionPredictor.load(tiny_vlm_dir, device="cpu")
    assert status == 200 and body["predictions"] == local.predict(instances, FEW)


def test_gs_image_uri_is_read_from_the_bucket(server, gcs_bucket):
    instance = sample_instances(1)[0]
    uri = f"gs://{gcs_bucket}/images/square.png"
    with storage.open_uri(uri, "wb") as f:
        f.write(base64.b64decode(instance["image"]["b64"]))
    status, body = server.predict([{"image": uri, "prompt": instance["prompt"]}], FEW, "/predict")
    assert (status, body["predictions"]) == (200, [_colour_in(instance)])


def test_concurrent_image_requests_share_a_batch_and_get_their_own_answers(served):
    server, batches = served
    instances = sample_instances(4)
    results = line_up(server, batches, ([instances[0]], FEW), [([i], FEW) for i in instances])
    assert batches.sizes[-2:] == [1, 4]
    assert [body["predictions"] for _, body in results[1:]] == [[_colour_in(i)] for i in instances]
