"""A saved ARR-COC model reads back as the same model: the base (LoRA adapters merged in), the
relevance head and the config; the server's marker check; a directory that is not one."""

import pytest
import torch

from tests.support.tiny_qwen3_vl import make_tiny_qwen
from trainers.arr_coc import saved
from trainers.arr_coc.config import ArrCocModelConfig, RelevanceConfig
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.stages import add_lora
from trainers.common.config import ConfigError
from trainers.lm.config import LoraConfig


def test_a_saved_model_with_lora_loads_back_the_same(scene_batch, tmp_path):
    base = make_tiny_qwen()  # its own: LoRA is injected in place
    cfg = ArrCocModelConfig(relevance=RelevanceConfig(budget=0.25, scorer_hidden=32))
    torch.manual_seed(0)
    model = ArrCoc(base, cfg.relevance)
    add_lora(model, LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "balancer.weights" in name:
                param.normal_(0.0, 0.1)  # adapters and head that change the output
    model.eval()
    with torch.no_grad():
        before = model(scene_batch)
    path = saved.save(model, base, cfg, str(tmp_path / "model"))
    assert saved.is_arr_coc_dir(path) and not saved.is_arr_coc_dir(str(tmp_path))

    loaded, loaded_base, loaded_cfg = saved.load(path)
    assert loaded_cfg == cfg and not saved.has_lora(loaded.vlm)  # merged into plain weights
    with torch.no_grad():
        after = loaded(scene_batch)
    assert torch.allclose(before.logits, after.logits, atol=1e-5)
    for a, b in zip(before.allocation.indices, after.allocation.indices, strict=True):
        assert torch.equal(a, b)
    # Guard: the adapters mattered, so agreeing means the merge kept them.
    with torch.no_grad():
        plain = ArrCoc(make_tiny_qwen(), cfg.relevance).eval()
        plain.head.load_state_dict(loaded.head.state_dict())
        assert not torch.allclose(plain(scene_batch).logits, after.logits, atol=1e-3)


def test_a_directory_that_is_not_a_saved_model_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="is not an ARR-COC model directory"):
        saved.load(str(tmp_path))


def test_the_registry_names_the_marker_the_saved_directory_writes():
    # serving.registry knows model directories by marker file, without importing torch.
    from serving.registry import MODEL_MARKERS
    from trainers.arr_coc.saved import MARKER

    assert MARKER in MODEL_MARKERS
