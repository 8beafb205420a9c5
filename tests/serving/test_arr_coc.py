"""Serving ARR-COC: the real server on loopback, loading a saved ARR-COC directory through
`load_predictor`, answers image + question instances with the cells it kept under the
requested visual-token budget; bad budgets are one-line JSON 400s.

    OMP_NUM_THREADS=1 python -m pytest -q tests/serving/test_arr_coc.py
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from serving.arr_coc import ArrCocPredictor
from serving.predictor import load_predictor
from serving.server import create_app
from tests.serving.servers import ThreadServer
from tests.support.tiny_qwen3_vl import make_tiny_qwen
from trainers.arr_coc import saved
from trainers.arr_coc.config import model_config
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.presets import debug
from trainers.arr_coc.scenes import scene_records

FEW = {"max_new_tokens": 3}
GRID = [8, 8]  # the debug preset's 128x128 scenes: 16-pixel merged cells
NUM_CELLS = 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A tiny ARR-COC saved as the trainer saves it (the head's weights seeded)."""
    cfg = debug()
    base = make_tiny_qwen()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ArrCoc(base, cfg.relevance)
    directory = str(tmp_path_factory.mktemp("arr-coc") / "model")
    return saved.save(model, base, model_config(cfg), directory)


@pytest.fixture(scope="module")
def server(model_dir):
    with ThreadServer(create_app(model_dir)) as running:
        assert running.wait_loaded("/health") == (200, {"status": "ready"})
        yield running


@pytest.fixture(scope="module")
def instances() -> list[dict]:
    """Two scenes, each with its question about one object."""
    return [{"image": r["image"], "prompt": r["question"]} for r in scene_records(2, seed=0)]


def _cells(prediction: dict) -> list[tuple[int, int]]:
    return [tuple(cell) for cell in prediction["kept_cells"]]


def test_answers_name_the_kept_cells_at_the_requested_budget(server, instances, model_dir):
    status, body = server.predict(instances, {"budget": 0.25, **FEW})
    assert status == 200, body
    for prediction in body["predictions"]:
        assert isinstance(prediction["answer"], str)
        assert prediction["grid"] == GRID
        assert prediction["visual_tokens"] == {"kept": 16, "total": NUM_CELLS}
        cells = _cells(prediction)
        assert len(set(cells)) == 16 and cells == sorted(cells)  # token (row-major) order
        assert all(0 <= r < GRID[0] and 0 <= c < GRID[1] for r, c in cells)
    # Relevance picks them, per image and question: not the first cells, not the same twice.
    first, second = (_cells(p) for p in body["predictions"])
    assert first != second and first != [divmod(i, GRID[1]) for i in range(16)]
    local = load_predictor(model_dir, device="cpu")
    assert isinstance(local, ArrCocPredictor)
    assert body["predictions"] == local.predict(instances, {"budget": 0.25, **FEW})


def test_a_lower_budget_keeps_fewer_of_the_same_cells(server, instances):
    kept = []
    for budget in ({"budget": 1}, {"budget": 0.5}, {"budget": 0.25}, {"tokens": 3}):
        status, body = server.predict(instances[:1], {**budget, **FEW})
        assert status == 200, body
        kept.append(set(_cells(body["predictions"][0])))
    assert [len(k) for k in kept] == [NUM_CELLS, 32, 16, 3]
    # The same scores rank the cells: a smaller budget keeps the best of what a larger kept.
    assert all(small < large for large, small in zip(kept, kept[1:], strict=False))


def test_an_instances_own_budget_wins_over_the_requests(server, instances):
    mixed = [{**instances[0], "tokens": 2}, instances[1]]
    status, body = server.predict(mixed, {"budget": 0.5, **FEW})
    assert status == 200, body
    assert [p["visual_tokens"]["kept"] for p in body["predictions"]] == [2, 32]
    # More tokens than the image has: all of them.
    status, body = server.predict(instances[:1], {"tokens": 1000, **FEW})
    assert body["predictions"][0]["visual_tokens"] == {"kept": NUM_CELLS, "total": NUM_CELLS}


FRACTION = "a fraction of the image's visual tokens in (0, 1]; a count goes in 'tokens'"
COUNT = "a whole number of visual tokens, at least 1"


@pytest.mark.parametrize(
    ("parameters", "own", "message"),
    [
        ({"budget": 0}, {}, f"parameters.budget=0 is invalid: {FRACTION}"),
        ({"budget": 1.5}, {}, f"parameters.budget=1.5 is invalid: {FRACTION}"),
        ({"budget": "0.25"}, {}, f"parameters.budget='0.25' is invalid: {FRACTION}"),
        ({"budget": True}, {}, f"parameters.budget=True is invalid: {FRACTION}"),
        ({"budget": math.nan}, {}, f"parameters.budget=nan is invalid: {FRACTION}"),
        ({"tokens": 0}, {}, f"parameters.tokens=0 is invalid: {COUNT}"),
        ({"tokens": 2.5}, {}, f"parameters.tokens=2.5 is invalid: {COUNT}"),
        (
            {"budget": 0.5, "tokens": 4},
            {},
            "parameters: give 'budget' (a fraction) or 'tokens' (a count), not both",
        ),
        ({}, {"budget": 2}, f"instances[1].budget=2 is invalid: {FRACTION}"),
        ({}, {"tokens": -1}, f"instances[1].tokens=-1 is invalid: {COUNT}"),
    ],
)
def test_bad_budgets_are_400_with_a_json_error(server, instances, parameters, own, message):
    body = {"instances": [instances[0], {**instances[1], **own}], "parameters": parameters}
    status, answer = server.call("POST", "/predict", json.dumps(body).encode())
    assert (status, answer) == (
        400,
        {"error": {"code": 400, "reason": "invalid_request", "message": message}},
    )


def test_an_unknown_instance_key_is_refused(server, instances):
    status, answer = server.predict([{**instances[0], "mask": "x"}], FEW)
    assert status == 400 and answer["error"]["message"].startswith(
        "instances[0] must be {'image': ..., 'prompt': str}, optionally with 'budget' or 'tokens'"
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_same_cells_are_kept(model_dir, instances):
    parameters = {"budget": 0.25, **FEW}
    on_gpu = load_predictor(model_dir, device="cuda").predict(instances, parameters)
    on_cpu = load_predictor(model_dir, device="cpu").predict(instances, parameters)
    assert [p["kept_cells"] for p in on_gpu] == [p["kept_cells"] for p in on_cpu]
