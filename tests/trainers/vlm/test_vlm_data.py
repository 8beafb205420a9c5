"""Image-text records to training batches: the image placeholder and the loss mask, bad records
and unreadable images (stop naming the record, or skip and count), relative image paths,
Parquet with inline bytes, and the sampler that makes 1 and N processes read the same data."""

import base64
import json
import random
import re
import shutil

import pytest
import torch

from tests.support.trainer_runs import TINY_VLM, run_trainer
from trainers.common.distributed import Dist
from trainers.common.packing import IGNORE
from trainers.common.records import DataError, Split, fingerprint
from trainers.vlm import examples as ex
from trainers.vlm.__main__ import main, parser, resolve_config
from trainers.vlm.batches import StepBatches
from trainers.vlm.config import IMAGE_TOKEN
from trainers.vlm.data import load_data, make_tokenizer, read
from trainers.vlm.images import SIGLIP_MEAN, SIGLIP_STD, ImageSpec
from trainers.vlm.sampler import ResumableSampler
from trainers.vlm.synthetic import shapes_records
from trainers.vlm.train import train

RECORDS = shapes_records(48, seed=0, image_size=32)
VQA = next(r for r in RECORDS if "question" in r)
CAPTION = next(r for r in RECORDS if "caption" in r)
NUM_IMAGE_TOKENS = 5


def _cfg(*args: str):
    return resolve_config(parser().parse_args([*TINY_VLM, *args]))


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(_cfg(), RECORDS)


def _tokenize(tokenizer, record, **kw):
    defaults = dict(
        where="t:1",
        num_image_tokens=NUM_IMAGE_TOKENS,
        caption_prompt="Say what you see.",
        max_text_tokens=48,
    )
    return ex.tokenize(tokenizer, record, **{**defaults, **kw})


def _learned(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.targets if t != IGNORE])


# --- token examples -------------------------------------------------------------------------


def test_the_image_token_becomes_one_placeholder_per_feature(tokenizer):
    example = _tokenize(tokenizer, VQA)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    positions = [i for i, t in enumerate(example.input_ids) if t == image_id]
    assert len(positions) == NUM_IMAGE_TOKENS
    assert positions == list(range(positions[0], positions[0] + NUM_IMAGE_TOKENS))
    assert example.image is VQA["image"] and example.where == "t:1"


def test_only_the_answer_and_its_end_are_learned(tokenizer):
    example = _tokenize(tokenizer, VQA)
    ids, targets = example.input_ids, example.targets
    assert len(targets) == len(ids) and targets[-1] == IGNORE
    # Shifted: position t predicts token t + 1.
    learned = [t for t, target in enumerate(targets) if target != IGNORE]
    assert learned and all(targets[t] == ids[t + 1] for t in learned)
    assert _learned(tokenizer, example).strip() == VQA["answer"] + tokenizer.eos_token
    # The generation prompt is exactly what the model saw before the answer in training, and
    # everything in it (the image placeholders included) is masked.
    prompt = ex.prompt_ids(tokenizer, VQA["question"], num_image_tokens=NUM_IMAGE_TOKENS)
    assert ids[: len(prompt)] == prompt
    assert learned[0] == len(prompt) - 1
    assert all(t == IGNORE for t in targets[: len(prompt) - 1])


def test_a_caption_record_asks_the_caption_prompt(tokenizer):
    caption = _tokenize(tokenizer, CAPTION)
    text = tokenizer.decode(caption.input_ids)
    assert "Say what you see." in text
    assert _learned(tokenizer, caption).strip() == CAPTION["caption"] + tokenizer.eos_token
    vqa_text = tokenizer.decode(_tokenize(tokenizer, VQA).input_ids)
    assert VQA["question"] in vqa_text and "Say what you see." not in vqa_text


def test_truncation_that_leaves_no_answer_drops_the_example(tokenizer):
    prompt = ex.prompt_ids(tokenizer, VQA["question"], num_image_tokens=1)
    assert _tokenize(tokenizer, VQA, max_text_tokens=len(prompt)) is None
    kept = _tokenize(tokenizer, VQA, max_text_tokens=len(prompt) + 1)
    assert kept is not None and len(kept.input_ids) == len(prompt) + NUM_IMAGE_TOKENS


# --- record files ---------------------------------------------------------------------------


def _png(record) -> bytes:
    return base64.b64decode(record["image"]["b64"])


def _write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _image_set(root, *, bad: dict[int, str] | None = None, num: int = 40):
    """`num` VQA/caption records whose images are PNG files under root/imgs, named by paths
    relative to root/train.jsonl; `bad` maps 1-based lines to "corrupt" or "missing"."""
    (root / "imgs").mkdir(parents=True)
    records = []
    for i, record in enumerate(RECORDS[:num]):
        name = f"imgs/{i}.png"
        kind = (bad or {}).get(i + 1)
        if kind == "corrupt":
            (root / name).write_bytes(random.Random(i).randbytes(200))
        elif kind != "missing":
            (root / name).write_bytes(_png(record))
        records.append({**record, "image": name})
    evals = [{**r, "image": {"b64": r["image"]["b64"]}} for r in RECORDS[num : num + 8]]
    return _write_jsonl(root / "train.jsonl", records), _write_jsonl(root / "eval.jsonl", evals)


def _run_args(tmp, train_uri, eval_uri, *extra):
    return [
        *TINY_VLM,
        "--data",
        train_uri,
        "--eval-data",
        eval_uri,
        "--max-steps",
        "5",  # 40 records / 8: one whole epoch, so every bad image is met once
        "--set",
        "train.global_batch_size=8",
        "--set",
        "checkpoint.every_steps=0",
        "--output-dir",
        str(tmp / "model"),
        "--checkpoint-dir",
        str(tmp / "ckpt"),
        *extra,
    ]


BAD = {3: "corrupt", 7: "missing"}


def test_a_corrupt_image_stops_the_run_with_one_line_naming_the_record(tmp_path):
    train_uri, eval_uri = _image_set(tmp_path / "data", bad={3: "corrupt"})
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = run_trainer(
        _run_args(tmp_path, train_uri, eval_uri), module="trainers.vlm", cwd=elsewhere
    )
    assert done.returncode == 1, done.stderr[-3000:]
    # The whole of stderr: one line, no traceback.
    assert done.stderr.strip().splitlines() == [
        f"error: {train_uri}:3: image bytes are not a decodable image (cannot identify image file)"
    ], done.stderr[-3000:]
    assert not (tmp_path / "model").exists()


def test_a_missing_image_file_stops_the_run_naming_the_record_and_the_path(tmp_path, capsys):
    train_uri, eval_uri = _image_set(tmp_path / "data", bad={7: "missing"})
    assert main(_run_args(tmp_path, train_uri, eval_uri)) == 1
    missing = tmp_path / "data" / "imgs" / "6.png"  # "imgs/6.png", under the records' directory
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {train_uri}:7: image 'imgs/6.png' ({missing}): no such file"
    )


def test_skipped_images_are_counted_and_relative_paths_follow_the_records_file(
    tmp_path, monkeypatch
):
    train_uri, eval_uri = _image_set(tmp_path / "data", bad=BAD)
    monkeypatch.chdir(tmp_path)  # not the records' directory: "imgs/0.png" must not resolve here
    cfg = _cfg(*_run_args(tmp_path, train_uri, eval_uri, "--set", "data.on_bad_record=skip"))
    meta = train(cfg)
    assert meta["steps"] == 5
    assert meta["dataset"]["skipped_images"] == len(BAD)
    assert meta["images_seen"] == 40 - len(BAD)
    on_disk = json.loads((tmp_path / "model" / "training_metadata.json").read_text())
    assert on_disk["dataset"]["skipped_images"] == len(BAD)


def test_a_micro_batch_whose_images_are_all_unreadable_is_skipped(tmp_path):
    # Micro-batches of 1: each bad image empties its micro-batch; the step must still run.
    train_uri, eval_uri = _image_set(tmp_path / "data", bad=BAD)
    args = _run_args(tmp_path, train_uri, eval_uri, "--set", "data.on_bad_record=skip")
    meta = train(_cfg(*args, "--set", "train.micro_batch_size=1"))
    assert meta["steps"] == 5 and meta["dataset"]["skipped_images"] == len(BAD)
    assert meta["images_seen"] == 40 - len(BAD)


def test_an_unreadable_eval_image_stops_the_run_too(tmp_path, capsys):
    train_uri, eval_uri = _image_set(tmp_path / "data")
    evals = [
        json.loads(line) for line in (tmp_path / "data" / "eval.jsonl").read_text().splitlines()
    ]
    evals[1]["image"] = "imgs/not-there.png"
    _write_jsonl(tmp_path / "data" / "eval.jsonl", evals)
    args = _run_args(tmp_path, train_uri, eval_uri, "--set", "train.exact_match_examples=8")
    assert main(args) == 1
    missing = tmp_path / "data" / "imgs" / "not-there.png"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {eval_uri}:2: image 'imgs/not-there.png' ({missing}): no such file"
    )


def test_split_and_fingerprint_do_not_depend_on_where_the_records_live(tmp_path, tokenizer):
    """The same records file (relative image paths) read from two directories, or from the
    prepare step's output: the same eval split and the same dataset fingerprint, so the W&B
    dataset artifact the trainer uses is the one prepare logged."""
    from trainers.vlm.data import load_records
    from trainers.vlm.prepared import prepare

    _image_set(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    splits, prints = [], []
    for name in ("a", "b"):
        cfg = _cfg(
            "--data", str(tmp_path / name / "train.jsonl"), "--set", "data.eval_fraction=0.3"
        )
        records = load_records(cfg)
        splits.append([where.rsplit(":", 1)[1] for where, _ in records[0].eval])
        data = load_data(cfg, tokenizer=tokenizer, num_image_tokens=4, records=records)
        prints.append(data.fingerprint)
    assert splits[0] and splits[0] == splits[1]
    assert prints[0] == prints[1]

    manifests = prepare(cfg, train_dir=str(tmp_path / "train"), eval_dir=str(tmp_path / "eval"))
    prepared = _cfg("--data", str(tmp_path / "train"), "--eval-data", str(tmp_path / "eval"))
    data = load_data(prepared, tokenizer=tokenizer, num_image_tokens=4)
    assert data.fingerprint == manifests["train"]["fingerprint"]


def test_a_record_without_an_answer_is_refused_when_read(tmp_path, capsys):
    records = [{**r, "image": {"b64": r["image"]["b64"]}} for r in RECORDS[:6]]
    records[3] = {"image": records[3]["image"], "question": "what colour is the square?"}
    path = _write_jsonl(tmp_path / "train.jsonl", records)
    with pytest.raises(DataError, match=rf"^{re.escape(path)}:4: field 'answer'"):
        read(path, on_bad="error")
    located, skipped = read(path, on_bad="skip")
    assert skipped == 1 and [w for w, _ in located][3] == f"{path}:5"

    outputs = ["--output-dir", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "c")]
    code = main([*TINY_VLM, "--data", path, *outputs])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {path}:4: field 'answer'")


def test_parquet_with_inline_image_bytes_trains(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def rows(records):
        vqa = [r for r in records if "question" in r]
        return [
            {
                "image": {"bytes": _png(r), "path": None},
                "question": r["question"],
                "answer": r["answer"],
            }
            for r in vqa
        ]

    train_rows, eval_rows = rows(RECORDS[:40]), rows(RECORDS[40:])
    pq.write_table(pa.Table.from_pylist(train_rows), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist(eval_rows), tmp_path / "eval.parquet")
    cfg = _cfg(
        "--data",
        str(tmp_path / "train.parquet"),
        "--eval-data",
        str(tmp_path / "eval.parquet"),
        "--max-steps",
        "2",
        "--set",
        "train.global_batch_size=8",
        "--set",
        "checkpoint.every_steps=0",
        "--output-dir",
        str(tmp_path / "model"),
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    )
    meta = train(cfg)
    assert meta["steps"] == 2 and meta["images_seen"] == 16
    assert meta["dataset"]["train_examples"] == len(train_rows)
    assert meta["dataset"]["fingerprint"] == fingerprint(train_rows)
    assert meta["dataset"]["skipped_images"] == 0


# --- which examples each rank reads ---------------------------------------------------------


def _order(n, *, world, rank, start=0, epoch=0, seed=3):
    sampler = ResumableSampler(range(n), num_replicas=world, rank=rank, seed=seed, start=start)
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("start", [0, 5, 12])
def test_a_sampler_started_at_k_yields_the_rest_of_the_full_order(start):
    full = _order(27, world=2, rank=1)
    assert _order(27, world=2, rank=1, start=start) == full[start:]
    assert len(ResumableSampler(range(27), num_replicas=2, rank=1, seed=3, start=start)) == len(
        full[start:]
    )


@pytest.mark.parametrize("epoch", [0, 1])
def test_two_ranks_share_out_exactly_the_one_rank_global_batch(epoch):
    n, global_batch = 27, 8
    single = _order(n, world=1, rank=0, epoch=epoch)
    ranks = [_order(n, world=2, rank=r, epoch=epoch) for r in (0, 1)]
    per_rank = global_batch // 2
    for step in range(n // global_batch):
        whole = single[step * global_batch : (step + 1) * global_batch]
        shares = [r[step * per_rank : (step + 1) * per_rank] for r in ranks]
        assert sorted(shares[0] + shares[1]) == sorted(whole)
        assert not set(shares[0]) & set(shares[1])
    # Guard: epochs are shuffled differently, so the equality above is not of two fixed orders.
    assert _order(n, world=1, rank=0, epoch=1 - epoch) != single


def test_batches_asked_for_out_of_order_are_the_ones_read_in_order(tokenizer):
    cfg = _cfg("--set", "train.global_batch_size=8", "--set", "train.micro_batch_size=4")
    located = [(f"t:{i + 1}", r) for i, r in enumerate(RECORDS[:20])]
    split = Split(train=located, eval=located[:2], duplicates_removed=0)
    data = load_data(cfg, tokenizer=tokenizer, num_image_tokens=4, records=(split, 0))
    spec = ImageSpec(size=32, mean=SIGLIP_MEAN, std=SIGLIP_STD)

    def batches():
        return StepBatches(data, spec, cfg=cfg, dist=Dist())

    in_order = batches()
    assert in_order.steps_per_epoch == 2 and in_order.accumulation == 2
    sequence = [in_order.for_step(s) for s in range(5)]  # epochs 0, 1 and the start of 2
    for step in (1, 3, 4):  # mid-epoch, the last step of an epoch, the next epoch's first
        resumed = batches().for_step(step)
        for got, want in zip(resumed, sequence[step], strict=True):
            assert torch.equal(got.input_ids, want.input_ids)
            assert torch.equal(got.pixel_values, want.pixel_values)
    # Guard: the steps differ from each other, so the comparison could fail.
    assert not torch.equal(sequence[1][0].pixel_values, sequence[3][0].pixel_values)
