"""LoRA fine-tuning: only adapter weights train, the adapter is saved, and `lora.merge` adds
full merged weights that load as a plain model."""

import json

import torch
from safetensors.torch import load_file

from tests.support.trainer_runs import TINY
from trainers.llm.__main__ import parser, resolve_config
from trainers.llm.train import train
from trainers.lm.model import add_lora, build_model, count_parameters


def test_only_adapters_are_trainable():
    cfg = resolve_config(parser().parse_args([*TINY, "--lora"]))
    model = add_lora(build_model(cfg.model, vocab_size=300), cfg.lora)
    total, trainable = count_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert 0 < trainable < total / 4
    assert names and all("lora_" in n for n in names)


def test_lora_run_saves_adapter_and_merged_model(tmp_path):
    out = tmp_path / "model"
    args = parser().parse_args(
        [
            *TINY,
            "--lora",
            "--max-steps",
            "3",
            "--output-dir",
            str(out),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--set",
            "lora.merge=true",
            "--set",
            "lora.r=4",
            "--set",
            "optim.lr=1e-2",
        ]
    )
    meta = train(resolve_config(args))
    assert meta["config"]["lora"]["enabled"] is True
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and "q_proj" in adapter_config["target_modules"]
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert any(float(t.abs().sum()) > 0 for k, t in adapter.items() if "lora_B" in k)

    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    base_names = {n for n, _ in merged.named_parameters()}
    assert not any("lora_" in n for n in base_names)
    assert (out / "merged" / "tokenizer.json").exists()
    assert torch.isfinite(next(merged.parameters())).all()


def test_activation_checkpointing_changes_memory_not_results(tmp_path):
    weights = []
    for name, flag in (("plain", "false"), ("ckpt", "true")):
        out = tmp_path / name
        args = parser().parse_args(
            [
                *TINY,
                "--max-steps",
                "3",
                "--output-dir",
                str(out),
                "--checkpoint-dir",
                str(tmp_path / f"{name}-ckpt"),
                "--set",
                f"model.gradient_checkpointing={flag}",
            ]
        )
        train(resolve_config(args))
        weights.append(load_file(str(out / "model.safetensors")))
    plain, checkpointed = weights
    assert plain.keys() == checkpointed.keys() and plain
    for key in plain:
        torch.testing.assert_close(checkpointed[key], plain[key], rtol=1e-5, atol=1e-6)
