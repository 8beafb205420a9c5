"""The sample files in examples/: what examples/generate.py writes, and usable as they are by
the pipelines' first step (the trainers' own prepare: every record valid, every image decoded).

    .venv/bin/python -m pytest -q tests/pipelines/test_examples.py
"""

import importlib.util
import json

import pytest
from PIL import Image

from tests.support.trainer_runs import REPO
from trainers.llm.steps import STEPS as LLM
from trainers.vlm.steps import STEPS as VLM

EXAMPLES = REPO / "examples"


def generated() -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location("generate", EXAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.files()


def test_the_sample_files_are_what_generate_writes():
    files = generated()
    assert len(files) > 10  # guard: the records, the images and shape.png
    for path, data in files.items():
        assert (EXAMPLES / path).read_bytes() == data, f"run examples/generate.py ({path})"


@pytest.mark.parametrize(
    ("steps", "path", "form"),
    [
        (LLM, "llm/arithmetic.jsonl", {"prompt", "response"}),
        (LLM, "llm/chat.jsonl", {"messages"}),
        (VLM, "vlm/vqa.jsonl", {"image", "question", "answer"}),
    ],
)
def test_each_record_file_prepares_with_no_record_skipped(tmp_path, steps, path, form):
    records = [json.loads(line) for line in (EXAMPLES / path).read_text().splitlines()]
    assert form <= set(records[0])
    cfg = steps.config(["--preset", "debug", "--data", str(EXAMPLES / path)])
    assert cfg.data.on_bad_record == "error"  # a bad record would stop this
    manifests = steps.prepare(cfg, train_dir=str(tmp_path / "t"), eval_dir=str(tmp_path / "e"))
    num_prepared = sum(manifests[s]["num_records"] for s in ("train", "eval"))
    assert num_prepared == len(records) and manifests["train"]["skipped_records"] == 0


def test_the_curl_example_image_is_a_red_square():
    image = Image.open(EXAMPLES / "vlm" / "shape.png").convert("RGB")
    colours = {colour for _, colour in image.getcolors()}
    assert colours == {(255, 255, 255), (255, 0, 0)}
