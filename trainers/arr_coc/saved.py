"""A trained ARR-COC model as a directory: what each stage writes, the next stage starts from,
evaluation scores and the server loads.

    save(model, base, cfg, "outputs/arr_coc")               # local, gs:// or /gcs/
    model, base, cfg = load("gs://b/runs/7/model", device="cuda")
    if is_arr_coc_dir(path): ...                            # what the server checks

The directory:

    arr_coc.json        the marker: the format name and the model config (base., relevance.,
                        lora.) as `ArrCocModelConfig` reads it back
    head.safetensors    the relevance head (participatory scorer and tension balancer)
    base/               the base Qwen3-VL as an HF directory (`qwen.save_base`): weights,
                        tokenizer, chat template, image processor; LoRA adapters merged in

Nothing is unpickled on load: safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
import tempfile

from trainers.arr_coc.config import ArrCocModelConfig
from trainers.arr_coc.qwen import Base, load_base, save_base
from trainers.common import storage
from trainers.common.config import ConfigError, from_dict, to_dict
from trainers.lm.model import local_source

FORMAT = "liftoff-arr-coc-v1"
MARKER = "arr_coc.json"
HEAD = "head.safetensors"
BASE = "base"


def is_arr_coc_dir(path: str) -> bool:
    """Whether `path` (local, gs:// or /gcs/) is a saved ARR-COC model directory."""
    return bool(path) and storage.exists(storage.join(path, MARKER))


def save(model, base: Base, cfg: ArrCocModelConfig, path: str) -> str:
    """Write `model` (an ArrCoc over `base`) and its config to `path`; return `path`."""
    if storage.is_remote(path):
        with tempfile.TemporaryDirectory(prefix="liftoff-arr-coc-") as local:
            save(model, base, cfg, local)
            storage.upload_dir(local, path)
        return path
    from safetensors.torch import save_file

    os.makedirs(path, exist_ok=True)
    # LoRA adapters merged in, so the base reads back as a plain Qwen3-VL.
    merged = merged_state(model.vlm) if has_lora(model.vlm) else None
    save_base(base, os.path.join(path, BASE), state_dict=merged)
    head = {name: t.detach().cpu().contiguous() for name, t in model.head.state_dict().items()}
    save_file(head, os.path.join(path, HEAD))
    # The marker last: a directory without it is not (yet) a model.
    with open(os.path.join(path, MARKER), "w") as f:
        json.dump({"format": FORMAT, "model": to_dict(cfg)}, f, indent=2, sort_keys=True)
    return path


def load(uri: str, *, device=None):
    """(ArrCoc in eval mode, its Base, its ArrCocModelConfig) from a directory `save` wrote."""
    from safetensors.torch import load_file

    from trainers.arr_coc.model import ArrCoc

    local = local_source(uri)
    cfg = read_config(local, uri=uri)
    base = load_base(_at(cfg, os.path.join(local, BASE)))
    model = ArrCoc(base, cfg.relevance)
    model.head.load_state_dict(load_file(os.path.join(local, HEAD)))
    model.eval()
    if device is not None:
        model.to(device)
    return model, base, cfg


def read_config(local: str, *, uri: str) -> ArrCocModelConfig:
    """The model config of a saved directory; anything else is a one-line ConfigError."""
    path = os.path.join(local, MARKER)
    if not os.path.exists(path):
        raise ConfigError(f"{uri} is not an ARR-COC model directory (no {MARKER})")
    with open(path) as f:
        marker = json.load(f)
    if marker.get("format") != FORMAT:
        raise ConfigError(f"{uri}: {MARKER} has format {marker.get('format')!r}, not {FORMAT!r}")
    return from_dict(ArrCocModelConfig, marker["model"], where=f"{uri}/{MARKER}")


def _at(cfg: ArrCocModelConfig, directory: str):
    """The base section, loading from the saved directory (a scratch base has been trained)."""
    import dataclasses

    return dataclasses.replace(cfg.base, source=directory)


def has_lora(module) -> bool:
    return any("lora_" in name for name, _ in module.named_parameters())


def merged_state(vlm) -> dict:
    """The base's state dict with each LoRA layer's delta added to its base weight and the
    adapter tensors left out: what a plain Qwen3-VL loads."""
    state = {}
    for name, module in vlm.named_modules():
        if hasattr(module, "base_layer") and hasattr(module, "get_delta_weight"):
            weight = module.base_layer.weight.detach()
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters)
            state[f"{name}.weight"] = (weight + delta).contiguous()
    for name, tensor in vlm.state_dict().items():
        if "lora_" in name:
            continue
        plain = name.replace(".base_layer.", ".")
        state.setdefault(plain, tensor)
    return state
