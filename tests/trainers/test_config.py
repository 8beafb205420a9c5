"""trainers.common.config with the LLM config and presets: validation, `--set` overrides and the
dict round trip that W&B and Launch use.

Run: `.venv/bin/pytest -q tests/trainers/test_config.py`.
"""

from __future__ import annotations

import json
import re

import pytest

from trainers.common.config import apply_overrides, from_dict, to_dict
from trainers.llm.config import LLMConfig
from trainers.llm.presets import PRESETS, debug, get_preset


@pytest.fixture
def cfg() -> LLMConfig:
    return debug()


# --- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_validates_and_round_trips(name):
    cfg = get_preset(name)
    assert isinstance(cfg, LLMConfig)
    assert cfg.train.global_batch_size % cfg.train.micro_batch_size == 0
    data = json.loads(json.dumps(to_dict(cfg)))  # what W&B stores: tuples become lists
    assert from_dict(LLMConfig, data) == cfg
    assert apply_overrides(cfg, []) == cfg


def test_preset_details():
    assert debug().preset == "debug"
    assert debug().model.source == "scratch" and debug().model.tokenizer == "trained"
    assert get_preset("qwen2.5-7b-lora").lora.r == 32
    assert get_preset("llama-3.1-8b-lora").lora.enabled
    assert not get_preset("llama-3.2-1b").lora.enabled


def test_unknown_preset_names_it_and_the_choices():
    with pytest.raises(ValueError) as err:
        get_preset("gpt-5")
    message = str(err.value)
    assert "'gpt-5'" in message
    for name in PRESETS:
        assert name in message


# --- overrides parse by type --------------------------------------------------------------------


def test_overrides_parse_each_field_type(cfg):
    out = apply_overrides(
        cfg,
        [
            "train.max_steps=7",
            "optim.lr=1e-3",
            "optim.weight_decay=0",
            "model.compile=true",
            "data.mask_prompt=no",
            "lora.target_modules=q_proj, v_proj",
            "model.source=/models/llama",
            "model.tokenizer=",
            "output_dir=/tmp/out",
        ],
    )
    assert out.train.max_steps == 7 and type(out.train.max_steps) is int
    assert out.optim.lr == 1e-3 and type(out.optim.lr) is float
    assert out.optim.weight_decay == 0.0 and type(out.optim.weight_decay) is float
    assert out.model.compile is True
    assert out.data.mask_prompt is False
    assert out.lora.target_modules == ("q_proj", "v_proj")
    assert out.model.source == "/models/llama" and out.model.tokenizer == ""
    assert out.output_dir == "/tmp/out"
    assert cfg.train.max_steps == 500  # the original is untouched


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False), ("False", False)],
)
def test_bool_spellings(cfg, text, value):
    assert apply_overrides(cfg, [f"model.compile={text}"]).model.compile is value


def test_value_may_contain_equals_and_spaces_are_trimmed(cfg):
    out = apply_overrides(cfg, ["wandb.secret = projects/p/secrets/a=b/versions/1 "])
    assert out.wandb.secret == "projects/p/secrets/a=b/versions/1"


def test_later_overrides_win(cfg):
    assert apply_overrides(cfg, ["train.seed=1", "train.seed=2"]).train.seed == 2


# --- bad values name the field and the value ----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.micro_batch_size=0", "train.micro_batch_size=0 is invalid: must be > 0"),
        ("data.overlong=maybe", "data.overlong='maybe' is invalid: choose one of truncate, drop"),
        ("optim.lr=-1", "optim.lr=-1.0 is invalid: must be > 0"),
        (
            "train.global_batch_size=12",
            "train.global_batch_size=12 is invalid: must be a multiple of train.micro_batch_size=8",
        ),
        (
            "model.hidden_size=130",
            "model.hidden_size=130 is invalid: must be divisible by model.num_heads=4",
        ),
        ("model.num_kv_heads=3", "model.num_kv_heads=3 is invalid: must divide model.num_heads=4"),
        ("train.max_steps=abc", "train.max_steps='abc' is invalid: expected int"),
        ("train.max_steps=2.5", "train.max_steps='2.5' is invalid: expected int"),
        ("optim.lr=fast", "optim.lr='fast' is invalid: expected float"),
        ("model.compile=maybe", "model.compile='maybe' is invalid: expected true or false"),
        ("data.seq_len=4", "data.seq_len=4 is invalid: must be >= 8"),
        (
            "data.seq_len=512",
            "data.seq_len=512 is invalid: must be <= model.max_position_embeddings=256",
        ),
        ("data.eval_fraction=1", "data.eval_fraction=1.0 is invalid: must be in [0, 1)"),
        ("model.tokenizer=", "model.tokenizer='' is invalid: a scratch model needs"),
        ("checkpoint.keep_last=0", "checkpoint.keep_last=0 is invalid: must be >= 1"),
        (
            "train.precision=fp16",
            "train.precision='fp16' is invalid: choose one of auto, fp32, bf16",
        ),
    ],
)
def test_bad_values_raise_naming_field_and_value(cfg, override, expected):
    with pytest.raises(ValueError) as err:
        apply_overrides(cfg, [override])
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_a_valid_combination_is_accepted(cfg):
    out = apply_overrides(cfg, ["train.global_batch_size=12", "train.micro_batch_size=4"])
    assert (out.train.global_batch_size, out.train.micro_batch_size) == (12, 4)
    out = apply_overrides(
        cfg, ["model.hidden_size=96", "model.num_heads=8", "model.num_kv_heads=8"]
    )
    assert out.model.hidden_size == 96


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("foo.bar=1", r"--set 'foo.bar=1': no config section 'foo'"),
        ("optim.momentum=0.9", r"--set 'optim.momentum=0.9': no config field 'optim.momentum'"),
        ("lr=3", r"no config field 'lr'"),
        ("optim=3", r"no config field 'optim'"),
        ("optim.lr.x=3", r"no config section 'lr'"),
        ("optim.lr", r"--set 'optim.lr' is invalid: expected section.field=value"),
        ("=3", r"expected section.field=value"),
    ],
)
def test_unknown_paths_in_set_raise_naming_them(cfg, override, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        apply_overrides(cfg, [override])


# --- dict round trip -----------------------------------------------------------------------------


def test_round_trip_of_a_modified_config(cfg):
    cfg = apply_overrides(cfg, ["optim.lr=0.01", "lora.enabled=true", "lora.target_modules=q_proj"])
    assert from_dict(LLMConfig, to_dict(cfg)) == cfg
    assert from_dict(LLMConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_ints_that_arrive_as_floats_are_accepted(cfg):
    data = to_dict(cfg)
    data["train"]["max_steps"] = 100.0
    data["model"]["hidden_size"] = 64.0
    out = from_dict(LLMConfig, data)
    assert out.train.max_steps == 100 and type(out.train.max_steps) is int
    assert out.model.hidden_size == 64 and type(out.model.hidden_size) is int


def test_non_integral_floats_and_bools_are_not_ints(cfg):
    data = to_dict(cfg)
    data["train"]["max_steps"] = 100.5
    with pytest.raises(
        ValueError, match=re.escape("train.max_steps=100.5 is invalid: expected an integer")
    ):
        from_dict(LLMConfig, data)
    data["train"]["max_steps"] = True
    with pytest.raises(ValueError, match=re.escape("train.max_steps=True is invalid")):
        from_dict(LLMConfig, data)


def test_missing_keys_keep_defaults_and_unknown_keys_are_errors():
    out = from_dict(
        LLMConfig,
        {"model": {"source": "scratch", "tokenizer": "trained"}, "train": {"max_steps": 5}},
    )
    assert out.train.max_steps == 5 and out.train.micro_batch_size == 8
    with pytest.raises(ValueError, match=r"unknown config field 'train.bogus'") as err:
        from_dict(LLMConfig, {"train": {"bogus": 1}})
    assert "train." in str(err.value) and "max_steps" in str(err.value)
