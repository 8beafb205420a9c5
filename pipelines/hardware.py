"""Hardware profiles: the machines a training or serving step runs on, checked against what
Vertex AI offers before anything is compiled or submitted.

    liftoff hardware                      # the table
    profile = get_profile("a100x8").with_options(nodes=2, scheduling="SPOT")
    profile.eval_step                     # what the evaluate step asks for: 1x A100, 12 vCPU, 85 GB

A profile feeds the CustomJob worker pools of the vertex target (machine, GPUs, replicas, boot
disk, scheduling, timeout), the machines of its other steps (`eval_step`, `PREPARE_STEP`), the
serving deploy step and the W&B Launch queue config. The machine/accelerator table is Vertex
AI's fixed-shape machines: an A2/A3/A4/G2 machine type comes with exactly one accelerator type
and count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SCHEDULING = ("STANDARD", "SPOT", "FLEX_START")
MAX_TIMEOUT_S = 7 * 24 * 3600  # a CustomJob's default timeout, and FLEX_START's limit
# Dynamic Workload Scheduler (FLEX_START) provisions only these GPUs.
FLEX_START_ACCELERATORS = (
    "NVIDIA_L4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
)
BOOT_DISKS = ("pd-ssd", "pd-standard", "hyperdisk-balanced")
# A3 Ultra and A4 machines boot from Hyperdisk only.
HYPERDISK_ONLY = ("a3-ultragpu-", "a4-highgpu-")

# machine type -> (accelerator type, count); "" for CPU-only machines.
FIXED_SHAPES: dict[str, tuple[str, int]] = {
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("NVIDIA_H100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8),
    "a4-highgpu-8g": ("NVIDIA_B200", 8),
    **{f"g2-standard-{c}": ("NVIDIA_L4", 1) for c in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("NVIDIA_L4", 2),
    "g2-standard-48": ("NVIDIA_L4", 4),
    "g2-standard-96": ("NVIDIA_L4", 8),
}
# N1 machines take attachable GPUs in these counts; CPU families take none.
ATTACHABLE = {"NVIDIA_TESLA_T4": (1, 2, 4), "NVIDIA_TESLA_V100": (1, 2, 4, 8)}
CPU_FAMILIES = ("n1-standard-", "n1-highmem-", "n2-standard-", "n2-highmem-", "e2-standard-")


@dataclass(frozen=True, kw_only=True)
class StepMachine:
    """What a pipeline step that is not a CustomJob asks Vertex AI Pipelines for; it runs on the
    closest machine it offers (at most 96 vCPU and 624 GB), e2-standard-4 when nothing is set."""

    cpu: int
    memory_gb: int
    accelerator_type: str = ""
    accelerator_count: int = 0


# Tokenizing, packing and decoding images in one process: more than e2-standard-4's 16 GB.
PREPARE_STEP = StepMachine(cpu=8, memory_gb=32)
# accelerator -> (vCPU, GB) of the machine with one of it (g2-standard-12, n1-standard-8,
# a2-highgpu-1g, a2-ultragpu-1g, a3-highgpu-1g): evaluate loads one model on one GPU.
ONE_GPU_MACHINES = {
    "NVIDIA_L4": (12, 48),
    "NVIDIA_TESLA_T4": (8, 30),
    "NVIDIA_TESLA_V100": (8, 30),
    "NVIDIA_TESLA_A100": (12, 85),
    "NVIDIA_A100_80GB": (12, 170),
    "NVIDIA_H100_80GB": (26, 234),
}
# H100 Mega, H200 and B200 come only eight to a machine, larger than a pipeline step may be.
EVAL_FALLBACK_ACCELERATOR = "NVIDIA_H100_80GB"
CPU_EVAL_STEP = StepMachine(cpu=8, memory_gb=32)


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    machine_type: str
    accelerator_type: str = ""
    accelerator_count: int = 0
    nodes: int = 1  # replicas; > 1 makes a multi-node job (workerpool0 = 1, workerpool1 = N-1)
    boot_disk_gb: int = 100
    boot_disk_type: str = "pd-ssd"
    scheduling: str = "STANDARD"
    timeout_s: int = MAX_TIMEOUT_S
    description: str = ""

    def __post_init__(self):
        check_machine(self.machine_type, self.accelerator_type, self.accelerator_count)
        if self.nodes < 1:
            raise ValueError(f"--nodes: {self.nodes} must be >= 1")
        if self.scheduling not in SCHEDULING:
            raise ValueError(f"scheduling: {self.scheduling!r} must be one of {SCHEDULING}")
        if self.boot_disk_gb < 100:
            raise ValueError(f"boot_disk_gb: {self.boot_disk_gb} must be >= 100")
        if self.timeout_s < 1:
            raise ValueError(f"--timeout: {self.timeout_s} s must be positive")
        check_boot_disk(self.machine_type, self.boot_disk_type)
        if self.scheduling == "FLEX_START":
            self._check_flex_start()

    def _check_flex_start(self) -> None:
        if self.accelerator_type not in FLEX_START_ACCELERATORS:
            gpus = self.accelerator_type or "no GPU"
            raise ValueError(
                f"--flex-start: {self.name} ({gpus}) cannot use FLEX_START; it provisions only "
                "L4, A100, H100, H200 and B200 GPUs"
            )
        if self.timeout_s > MAX_TIMEOUT_S:
            raise ValueError(
                f"--flex-start: a timeout of {self.timeout_s} s is over FLEX_START's 7 days "
                f"({MAX_TIMEOUT_S} s)"
            )

    @property
    def processes_per_node(self) -> int:
        """One training process per GPU; one on a CPU machine."""
        return max(1, self.accelerator_count)

    @property
    def eval_step(self) -> StepMachine:
        """The evaluate step's machine: one GPU of this profile's kind (or the nearest that a
        pipeline step can have), with that one-GPU machine's vCPUs and memory."""
        if not self.accelerator_type:
            return CPU_EVAL_STEP
        accelerator = self.accelerator_type
        if accelerator not in ONE_GPU_MACHINES:
            accelerator = EVAL_FALLBACK_ACCELERATOR
        cpu, memory_gb = ONE_GPU_MACHINES[accelerator]
        return StepMachine(
            cpu=cpu, memory_gb=memory_gb, accelerator_type=accelerator, accelerator_count=1
        )

    def with_options(
        self,
        *,
        nodes: int | None = None,
        scheduling: str | None = None,
        timeout_s: int | None = None,
    ) -> Profile:
        changes = {"nodes": nodes, "scheduling": scheduling, "timeout_s": timeout_s}
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


def check_boot_disk(machine_type: str, boot_disk_type: str) -> None:
    """Raise a one-line ValueError unless `machine_type` can boot from `boot_disk_type`."""
    if boot_disk_type not in BOOT_DISKS:
        raise ValueError(f"boot_disk_type: {boot_disk_type!r} must be one of {BOOT_DISKS}")
    hyperdisk_only = machine_type.startswith(HYPERDISK_ONLY)
    if hyperdisk_only != (boot_disk_type == "hyperdisk-balanced"):
        need = "hyperdisk-balanced" if hyperdisk_only else "pd-ssd or pd-standard"
        raise ValueError(f"hardware: {machine_type} boots from {need}, not {boot_disk_type}")


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
            boot_disk_type="hyperdisk-balanced",
            description="8x H200 141 GB per node (A3 Ultra)",
        ),
        Profile(
            name="b200x8",
            machine_type="a4-highgpu-8g",
            accelerator_type="NVIDIA_B200",
            accelerator_count=8,
            boot_disk_gb=500,
            boot_disk_type="hyperdisk-balanced",
            description="8x B200 180 GB per node (A4)",
        ),
    )
}
SERVING_DEFAULT = "l4x1"  # g2-standard-8 with one NVIDIA_L4


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"--hardware: unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]


def parse_timeout(text: str) -> int:
    """Seconds from `90m`, `36h`, `7d` or `3600s` (the --timeout flag)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"--timeout: {text!r} is not a duration like 90m, 36h or 7d")
    return int(number) * units[unit]


def table() -> list[str]:
    """One line per profile, for `liftoff hardware`."""
    lines = [f"{'PROFILE':<10} {'MACHINE':<16} {'ACCELERATORS':<24} DESCRIPTION"]
    for p in PROFILES.values():
        gpus = f"{p.accelerator_count}x {p.accelerator_type}" if p.accelerator_type else "-"
        lines.append(f"{p.name:<10} {p.machine_type:<16} {gpus:<24} {p.description}")
    return lines
