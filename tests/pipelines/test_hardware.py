"""Hardware profiles: the shapes Vertex AI offers, and the combinations it would refuse."""

import pytest

from pipelines.hardware import PROFILES, Profile, check_machine, get_profile

REQUIRED = {
    "cpu": ("n1-standard-8", "", 0),
    "l4x1": ("g2-standard-8", "NVIDIA_L4", 1),
    "a100x1": ("a2-highgpu-1g", "NVIDIA_TESLA_A100", 1),
    "a100x8": ("a2-highgpu-8g", "NVIDIA_TESLA_A100", 8),
    "a100-80x8": ("a2-ultragpu-8g", "NVIDIA_A100_80GB", 8),
    "h100x8": ("a3-highgpu-8g", "NVIDIA_H100_80GB", 8),
    "h200x8": ("a3-ultragpu-8g", "NVIDIA_H200_141GB", 8),
}


@pytest.mark.parametrize("name", list(REQUIRED))
def test_required_profiles(name):
    p = get_profile(name)
    assert (p.machine_type, p.accelerator_type, p.accelerator_count) == REQUIRED[name]
    assert p.processes_per_node == max(1, REQUIRED[name][2])


@pytest.mark.parametrize(
    "machine, accelerator, count",
    [
        ("a2-highgpu-8g", "NVIDIA_TESLA_A100", 4),  # the machine has 8
        ("a2-highgpu-1g", "NVIDIA_H100_80GB", 1),  # wrong GPU for the family
        ("a3-ultragpu-8g", "NVIDIA_H100_80GB", 8),
        ("g2-standard-8", "", 0),  # G2 always has its L4
        ("n1-standard-8", "NVIDIA_L4", 1),  # L4 is not attachable to N1
        ("n1-standard-8", "NVIDIA_TESLA_T4", 3),
        ("n2-standard-8", "NVIDIA_TESLA_T4", 1),  # N2 takes no GPUs
        ("n1-standard-8", "", 2),
        ("z9-imaginary-1", "", 0),
    ],
)
def test_invalid_combinations_are_refused(machine, accelerator, count):
    with pytest.raises(ValueError, match="hardware: ") as err:
        check_machine(machine, accelerator, count)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "machine, accelerator, count",
    [("n1-standard-16", "NVIDIA_TESLA_T4", 2), ("n1-highmem-8", "NVIDIA_TESLA_V100", 8)],
)
def test_attachable_gpus_are_accepted(machine, accelerator, count):
    check_machine(machine, accelerator, count)


def test_options_are_validated():
    base = get_profile("a100x8")
    spot = base.with_options(nodes=3, scheduling="SPOT")
    assert (spot.nodes, spot.scheduling, spot.machine_type) == (3, "SPOT", "a2-highgpu-8g")
    assert base.nodes == 1  # profiles are immutable
    with pytest.raises(ValueError, match="--nodes"):
        base.with_options(nodes=0)
    with pytest.raises(ValueError, match="scheduling"):
        base.with_options(scheduling="PREEMPTIBLE")
    with pytest.raises(ValueError, match="unknown profile 'a100x9'"):
        get_profile("a100x9")


def test_every_profile_is_valid_and_named_after_its_key():
    for name, profile in PROFILES.items():
        assert profile.name == name
        Profile(**{**profile.__dict__})  # revalidates
