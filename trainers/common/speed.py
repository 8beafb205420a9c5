"""Throughput and model FLOPs utilisation (MFU).

MFU = achieved model FLOP/s / the device's dense bf16 peak. Model FLOPs per token follow the
PaLM appendix: 6 * N (forward and backward through the weights) + 12 * layers * hidden * seq_len
(attention scores and values); with frozen weights (LoRA), their weight-gradient third is not done.
"""

from __future__ import annotations

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


def flops_per_token(
    *, num_params: int, num_trainable: int, num_layers: int, hidden_size: int, seq_len: int
) -> float:
    frozen = num_params - num_trainable
    weights = 6 * num_trainable + 4 * frozen
    attention = 12 * num_layers * hidden_size * seq_len
    return float(weights + attention)


def mfu(
    tokens_per_second: float, flops_token: float, peak: float | None, num_devices: int = 1
) -> float | None:
    if peak is None:
        return None
    return tokens_per_second * flops_token / (peak * num_devices)
