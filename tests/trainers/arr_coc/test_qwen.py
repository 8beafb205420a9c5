"""The base model: the real presets' loading code on a tiny Qwen3-VL checkpoint saved here (same
logits back, its chat template from the tokenizer or from the processor's file), the presets'
names and validation, and inputs shaped as Qwen3VLProcessor makes them."""

import json
import shutil

import pytest
import torch

from trainers.arr_coc.config import ArrCocModelConfig, BaseConfig, RelevanceConfig
from trainers.arr_coc.presets import PRESETS, QWEN3_VL, get_preset
from trainers.arr_coc.qwen import CHAT_TEMPLATE, load_base, save_base
from trainers.common.config import apply_overrides


@pytest.fixture(scope="module")
def saved(tiny_qwen, tmp_path_factory) -> str:
    return save_base(tiny_qwen, str(tmp_path_factory.mktemp("qwen3-vl") / "base"))


@torch.no_grad()
def test_a_saved_checkpoint_loads_back_through_the_real_loader(saved, tiny_qwen, scene_batch):
    loaded = load_base(BaseConfig(source=saved, min_pixels=64 * 64, max_pixels=128 * 128))
    assert type(loaded.model).__name__ == "Qwen3VLForConditionalGeneration"
    assert loaded.tokenizer.chat_template == CHAT_TEMPLATE
    assert (loaded.image_processor.patch_size, loaded.image_processor.merge_size) == (8, 2)
    expected = tiny_qwen.model(**scene_batch.model_inputs()).logits
    assert torch.allclose(
        loaded.model.eval()(**scene_batch.model_inputs()).logits, expected, atol=1e-5
    )


def test_the_chat_template_comes_from_the_processor_file_when_the_tokenizer_has_none(
    saved, tmp_path
):
    copy = tmp_path / "base"
    shutil.copytree(saved, copy, ignore=shutil.ignore_patterns("chat_template.jinja"))
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    (copy / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    assert load_base(BaseConfig(source=str(copy))).tokenizer.chat_template == CHAT_TEMPLATE
    (copy / "chat_template.json").unlink()
    with pytest.raises(ValueError, match="has no chat template"):
        load_base(BaseConfig(source=str(copy)))


def test_presets():
    assert set(PRESETS) == {"debug", *QWEN3_VL}
    for name, hf_id in QWEN3_VL.items():
        cfg = get_preset(name)
        assert cfg.base.source == hf_id and hf_id.startswith("Qwen/Qwen3-VL-")
        assert cfg.base.max_pixels == 448 * 448 and cfg.relevance.budget == 0.25
    assert get_preset("debug").base.source == "scratch"
    with pytest.raises(ValueError, match="preset='nope' is unknown"):
        get_preset("nope")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("relevance.budget=1.5", "relevance.budget=1.5 is invalid"),
        ("relevance.budget=0", "relevance.budget=0.0 is invalid"),
        ("relevance.stage=4", "relevance.stage=4 is invalid"),
        ("relevance.min_budget=0.6", "relevance.min_budget=0.6 is invalid"),
        ("base.deepstack_layers=0,5", "base.deepstack_layers=(0, 5) is invalid"),
        ("base.text_heads=3", "base.text_heads=3 is invalid"),
    ],
)
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(ArrCocModelConfig(), [override])
    assert apply_overrides(
        ArrCocModelConfig(), ["relevance.budget=200"]
    ).relevance == RelevanceConfig(budget=200)
