"""Hardware profiles: the machines a training or serving step runs on, checked against what
Vertex AI offers before anything is compiled or submitted.

    liftoff hardware                      # the table
    profile = get_profile("a100x8").with_options(nodes=2, scheduling="SPOT")

A profile feeds the CustomJob worker pools of the vertex target, the serving deploy step and the
W&B Launch queue config. The machine/accelerator table is Vertex AI's fixed-shape machines: an
A2/A3/G2 machine type comes with exactly one accelerator type and count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SCHEDULING = ("STANDARD", "SPOT", "FLEX_START")

# machine type -> (accelerator type, count); "" for CPU-only machines.
FIXED_SHAPES: dict[str, tuple[str, int]] = {
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("NVIDIA_H100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8),
    **{f"g2-standard-{c}": ("NVIDIA_L4", 1) for c in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("NVIDIA_L4", 2),
    "g2-standard-48": ("NVIDIA_L4", 4),
    "g2-standard-96": ("NVIDIA_L4", 8),
}
# N1 machines take attachable GPUs in these counts; CPU families take none.
ATTACHABLE = {"NVIDIA_TESLA_T4": (1, 2, 4), "NVIDIA_TESLA_V100": (1, 2, 4, 8)}
CPU_FAMILIES = ("n1-standard-", "n1-highmem-", "n2-standard-", "n2-highmem-", "e2-standard-")


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    machine_type: str
    accelerator_type: str = ""
    accelerator_count: int = 0
    nodes: int = 1  # replicas; > 1 makes a multi-node job (workerpool0 = 1, workerpool1 = N-1)
    boot_disk_gb: int = 100
    scheduling: str = "STANDARD"
    description: str = ""

    def __post_init__(self):
        check_machine(self.machine_type, self.accelerator_type, self.accelerator_count)
        if self.nodes < 1:
            raise ValueError(f"--nodes: {self.nodes} must be >= 1")
        if self.scheduling not in SCHEDULING:
            raise ValueError(f"scheduling: {self.scheduling!r} must be one of {SCHEDULING}")
        if self.boot_disk_gb < 100:
            raise ValueError(f"boot_disk_gb: {self.boot_disk_gb} must be >= 100")

    @property
    def processes_per_node(self) -> int:
        """One training process per GPU; one on a CPU machine."""
        return max(1, self.accelerator_count)

    def with_options(self, *, nodes: int | None = None, scheduling: str | None = None) -> Profile:
        changes = {"nodes": nodes, "scheduling": scheduling}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def check_machine(machine_type: str, accelerator_type: str, accelerator_count: int) -> None:
    """Raise a one-line ValueError unless Vertex AI offers this machine with these GPUs."""
    what = f"{machine_type} with {accelerator_count}x {accelerator_type or 'no accelerator'}"
    if machine_type in FIXED_SHAPES:
        shape = FIXED_SHAPES[machine_type]
        if (accelerator_type, accelerator_count) != shape:
            raise ValueError(
                f"hardware: {what} is invalid; {machine_type} has {shape[1]}x {shape[0]}"
            )
        return
    if not machine_type.startswith(CPU_FAMILIES):
        raise ValueError(f"hardware: unknown machine type {machine_type!r}")
    if not accelerator_type:
        if accelerator_count:
            raise ValueError(f"hardware: {what} is invalid; a count needs an accelerator type")
        return
    counts = ATTACHABLE.get(accelerator_type) if machine_type.startswith("n1-") else None
    if counts is None or accelerator_count not in counts:
        raise ValueError(f"hardware: {what} is invalid; N1 machines take T4 x1/2/4 or V100 x1-8")


PROFILES = {
    p.name: p
    for p in (
        Profile(name="cpu", machine_type="n1-standard-8", description="CPU only (debug runs)"),
        Profile(
            name="l4x1",
            machine_type="g2-standard-8",
            accelerator_type="NVIDIA_L4",
            accelerator_count=1,
            description="1x L4 24 GB: LoRA on <=8B, serving",
        ),
        Profile(
            name="a100x1",
            machine_type="a2-highgpu-1g",
            accelerator_type="NVIDIA_TESLA_A100",
            accelerator_count=1,
            description="1x A100 40 GB: full fine-tune of ~1B",
        ),
        Profile(
            name="a100x8",
            machine_type="a2-highgpu-8g",
            accelerator_type="NVIDIA_TESLA_A100",
            accelerator_count=8,
            boot_disk_gb=500,
            description="8x A100 40 GB per node: DDP",
        ),
        Profile(
            name="a100-80x8",
            machine_type="a2-ultragpu-8g",
            accelerator_type="NVIDIA_A100_80GB",
            accelerator_count=8,
            boot_disk_gb=500,
            description="8x A100 80 GB per node",
        ),
        Profile(
            name="h100x8",
            machine_type="a3-highgpu-8g",
            accelerator_type="NVIDIA_H100_80GB",
            accelerator_count=8,
            boot_disk_gb=500,
            description="8x H100 80 GB per node",
        ),
        Profile(
            name="h200x8",
            machine_type="a3-ultragpu-8g",
            accelerator_type="NVIDIA_H200_141GB",
            accelerator_count=8,
            boot_disk_gb=500,
            description="8x H200 141 GB per node",
        ),
    )
}
SERVING_DEFAULT = "l4x1"  # g2-standard-8 with one NVIDIA_L4


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"--hardware: unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]


def table() -> list[str]:
    """One line per profile, for `liftoff hardware`."""
    lines = [f"{'PROFILE':<10} {'MACHINE':<16} {'ACCELERATORS':<24} DESCRIPTION"]
    for p in PROFILES.values():
        gpus = f"{p.accelerator_count}x {p.accelerator_type}" if p.accelerator_type else "-"
        lines.append(f"{p.name:<10} {p.machine_type:<16} {gpus:<24} {p.description}")
    return lines
