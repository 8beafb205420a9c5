"""The arithmetic behind the loop's metrics: model FLOPs, MFU, memory and perplexity.

    flops = tokens * flops_per_token(num_params=N, num_trainable=T, num_layers=L, ...)
    mfu(flops, seconds=2.0, peak=device_peak("cuda:0"), num_devices=8)   # None off CUDA

MFU = achieved model FLOP/s / the devices' dense bf16 peak. Model FLOPs per token follow the
PaLM appendix: 6 * N (forward and backward through the weights) + 12 * layers * hidden * seq_len
(attention scores and values); through frozen weights (LoRA bases, a frozen language model
that still passes gradients back) the backward skips their weight gradients: 4 * N.
"""

from __future__ import annotations

import math

# Dense bf16 peak FLOP/s by device name fragment (vendor datasheets, no sparsity).
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "A10G": 125e12,
    "V100": 125e12,  # fp16 tensor cores; V100 has no bf16
    "T4": 65e12,
}


def peak_flops(device_name: str) -> float | None:
    """The bf16 peak of a device named like torch.cuda.get_device_name(), or None if unknown."""
    for fragment, flops in PEAK_BF16_FLOPS.items():
        if fragment in device_name:
            return flops
    return None


def device_peak(device: str) -> float | None:
    """The bf16 peak of a torch device ("cpu" and unknown GPUs: None, so no MFU is logged)."""
    if not device.startswith("cuda"):
        return None
    import torch

    return peak_flops(torch.cuda.get_device_name(device))


def flops_per_token(
    *, num_params: int, num_trainable: int, num_layers: int, hidden_size: int, seq_len: int
) -> float:
    """Training FLOPs per token of a decoder with `num_params` weights, `num_trainable` of
    them trained, attending over `seq_len` positions."""
    frozen = num_params - num_trainable
    weights = 6 * num_trainable + 4 * frozen
    attention = 12 * num_layers * hidden_size * seq_len
    return float(weights + attention)


def mfu(flops: float, *, seconds: float, peak: float | None, num_devices: int) -> float | None:
    """The share of `num_devices` devices' peak that `flops` model FLOPs in `seconds` are."""
    if peak is None:
        return None
    return flops / max(seconds, 1e-9) / (peak * num_devices)


def peak_memory_gb(device: str) -> float | None:
    """The most memory tensors held on `device` since the last call, in GB (None off CUDA);
    the count restarts, so each logging window reports its own peak."""
    if not device.startswith("cuda"):
        return None
    import torch

    peak = torch.cuda.max_memory_allocated(device) / 1e9
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def perplexity(loss: float) -> float:
    """exp(mean token loss), capped so a diverged loss still logs a number."""
    return math.exp(min(loss, 50.0))
