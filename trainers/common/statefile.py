"""State files without pickle: the tensors of a nested state in safetensors, the rest of it as
JSON in the same file's header, so loading one can never run code.

    written = write({"model": model.state_dict(), "step": 7}, "gs://b/step-7/state.safetensors")
    state = read("/tmp/copy/state.safetensors")          # a local file, once it is verified

A state holds tensors, dicts (keys: str or int), lists, tuples, str, int, float, bool and
None; anything else is refused when it is written, naming where it is. Tensors that are one
tensor (tied weights) are stored once and come back as one; tuples and int keys come back as
they were (optimizer states and the python RNG state need both).
"""

from __future__ import annotations

import json
import os
import tempfile

import torch

from trainers.common import storage

_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"
_HEADER_KEY = "liftoff.state"  # the safetensors metadata entry that holds the JSON


def write(state: dict, uri: str) -> storage.Written:
    """Write `state` as the file `uri` (local: fsynced; remote: uploaded and checked) and
    return its size and CRC32C."""
    encoder = _Encoder()
    skeleton = encoder.encode(state, "state")
    metadata = {_HEADER_KEY: json.dumps(skeleton)}
    from safetensors.torch import save_file

    target = storage.local_path(uri)
    if target is not None:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        save_file(encoder.tensors, target, metadata=metadata)
        return storage.put_file(target, uri)  # fsyncs it in place
    with tempfile.TemporaryDirectory(prefix="liftoff-state-") as staging:
        local = os.path.join(staging, os.path.basename(uri))
        save_file(encoder.tensors, local, metadata=metadata)
        return storage.put_file(local, uri)


def read(local: str) -> dict:
    """The state in the local file `local` (tensors on the CPU)."""
    from safetensors import safe_open

    with safe_open(local, framework="pt", device="cpu") as f:
        skeleton = json.loads((f.metadata() or {})[_HEADER_KEY])
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - not a dict
    return _decode(skeleton, tensors)


class _Encoder:
    """A state as JSON, its tensors collected under the path where each was found."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._names: dict[tuple, str] = {}  # a tensor's memory and view -> its stored name
        self._storages: set[int] = set()

    def encode(self, value, where: str):
        if isinstance(value, torch.Tensor):
            return {_TENSOR: self._add(value.detach(), where)}
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.encode(v, f"{where}.{k}") for k, v in value.items()}
            return {_ITEMS: [[self.encode(k, where), self.encode(v, f"{where}[{k!r}]")]
                             for k, v in value.items()]}  # fmt: skip
        if isinstance(value, list | tuple):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {_TUPLE: items} if isinstance(value, tuple) else items
        if value is None or isinstance(value, str | int | float):
            return value
        raise TypeError(
            f"checkpoint state {where}: a {type(value).__name__} cannot be saved (tensors, "
            "numbers, strings, lists, tuples and dicts can)"
        )

    def _add(self, tensor: torch.Tensor, where: str) -> str:
        memory = tensor.untyped_storage().data_ptr() if tensor.numel() else id(tensor)
        view = (memory, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        if view in self._names:  # the same tensor again (tied weights): stored once
            return self._names[view]
        if memory in self._storages or not tensor.is_contiguous():
            tensor = tensor.contiguous() if not tensor.is_contiguous() else tensor.clone()
        self._storages.add(memory)
        self._names[view] = where
        self.tensors[where] = tensor
        return where


def _decode(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if _TENSOR in value:
        return tensors[value[_TENSOR]]
    if _TUPLE in value:
        return tuple(_decode(v, tensors) for v in value[_TUPLE])
    if _ITEMS in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value[_ITEMS]}
    return {k: _decode(v, tensors) for k, v in value.items()}
