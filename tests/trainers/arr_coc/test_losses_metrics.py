"""Losses and metrics on hand-made tensors and on encoded scenes: only answer tokens count,
teacher-forced exact match, the mask loss prefers the object, and the metrics' numbers."""

import pytest
import torch
from PIL import Image

from trainers.arr_coc.losses import answer_ce, answer_correct, mask_loss, soft_iou
from trainers.arr_coc.metrics import allocation_metrics, knowing_metrics, mask_metrics
from trainers.arr_coc.overlay import draw_kept, kept_cells
from trainers.common.packing import IGNORE


def test_only_the_answer_and_its_end_token_are_labelled(tiny_qwen, scene_batch):
    tokenizer = tiny_qwen.tokenizer
    for b in range(scene_batch.num_examples):
        labelled = scene_batch.labels[b][scene_batch.labels[b] != IGNORE]
        answer = tokenizer.decode(labelled)
        assert answer.endswith("<|im_end|>") and answer[: -len("<|im_end|>")].isalpha()
        image = scene_batch.input_ids[b] == tiny_qwen.image_token_id
        assert int(image.sum()) == 64 and (scene_batch.labels[b][image] == IGNORE).all()
        assert torch.equal(scene_batch.mm_token_type_ids[b].bool(), image)


def test_answer_ce_ignores_everything_but_the_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.full((2, 6), IGNORE)
    labels[0, 4:] = torch.tensor([3, 7])
    labels[1, 5] = 2
    sums, counts = answer_ce(logits, labels)
    assert counts.tolist() == [2, 1]
    expected = -torch.log_softmax(logits[0, 3], -1)[3] - torch.log_softmax(logits[0, 4], -1)[7]
    assert torch.isclose(sums[0], expected)
    changed = logits.clone()
    changed[:, :3] += 5 * torch.randn(2, 3, 11)  # prompt positions predict nothing labelled
    assert torch.allclose(answer_ce(changed, labels)[0], sums)


def test_answer_correct_needs_every_answer_token():
    labels = torch.full((3, 4), IGNORE)
    labels[:, 2:] = torch.tensor([1, 2])
    logits = torch.zeros(3, 4, 5)
    logits[:, 1, 1] = logits[:, 2, 2] = 1.0  # predicts 1 then 2
    logits[1, 2, 2], logits[1, 2, 4] = 0.0, 1.0  # the second token wrong
    logits[2] = 0.0
    logits[2, 1, 1] = 1.0  # ties at the last token resolve to 0: wrong
    assert answer_correct(logits, labels).tolist() == [True, False, False]


def test_mask_loss_prefers_the_object():
    mask = torch.zeros(4, 4)
    mask[1:3, 1:3] = 1.0
    assert torch.isclose(soft_iou(mask, mask), torch.tensor(1.0), atol=1e-4)
    good, flat, inverse = (
        mask_loss(mask * 0.9 + 0.05, mask),
        mask_loss(torch.full((4, 4), 0.5), mask),
        mask_loss(1 - mask, mask),
    )
    assert good < flat < inverse


def test_mask_metrics_count_relevant_cells():
    mask = torch.zeros(4, 4)
    mask[0, :2] = torch.tensor([1.0, 0.2])  # two relevant cells: 0 and 1
    scores = [torch.zeros(4, 4)]
    kept = [torch.tensor([0, 5, 6, 7])]
    nan = torch.full((4, 4), float("nan"))
    metrics = mask_metrics(scores * 2, indices=kept * 2, cell_masks=[mask, nan])  # 2nd skipped
    assert metrics["relevance/precision_at_k"] == pytest.approx(0.25)
    assert metrics["relevance/recall_at_k"] == pytest.approx(0.5)
    assert metrics["relevance/soft_iou"] == pytest.approx(0.0)
    assert mask_metrics(scores, indices=kept, cell_masks=[nan]) == {}


def test_allocation_and_knowing_metrics():
    metrics = allocation_metrics([16, 8, 12, 12], [64, 64, 64, 64])
    assert metrics["compression_ratio"] == pytest.approx(256 / 48)
    assert (metrics["allocation/min_tokens"], metrics["allocation/max_tokens"]) == (8, 16)
    assert metrics["allocation/mean_tokens"] == 12
    assert metrics["allocation/std_tokens"] == pytest.approx(8**0.5)
    maps = [
        torch.stack([torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([[0.0, 1.0], [0.0, 1.0]])])
    ]
    knowing = knowing_metrics(maps)
    assert knowing["knowing/perspectival_mean"] == 1 and knowing["knowing/perspectival_std"] == 0
    assert (
        knowing["knowing/participatory_mean"] == 0.5 and knowing["knowing/participatory_std"] == 0.5
    )


def test_kept_cells_are_named_and_drawn():
    assert kept_cells(torch.tensor([0, 5, 15]), grid_width=4) == [[0, 0], [1, 1], [3, 3]]
    picture = draw_kept(
        Image.new("RGB", (64, 64), (255, 255, 255)), torch.tensor([0, 5]), grid=(4, 4)
    )
    assert picture.getpixel((8, 8)) == (255, 255, 255)  # inside kept cell (0, 0)
    assert picture.getpixel((0, 8)) == (255, 0, 0)  # its outline
    assert picture.getpixel((40, 8))[0] < 255  # dropped cell (0, 2), greyed
    assert picture.getpixel((24, 24)) == (255, 255, 255)  # kept cell (1, 1)
