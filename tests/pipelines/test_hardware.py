"""Hardware profiles: the shapes Vertex AI offers, and the combinations it would refuse."""

import pytest

from pipelines.hardware import PROFILES, Profile, check_machine, get_profile, parse_timeout

REQUIRED = {
    "cpu": ("n1-standard-8", "", 0),
    "l4x1": ("g2-standard-8", "NVIDIA_L4", 1),
    "a100x1": ("a2-highgpu-1g", "NVIDIA_TESLA_A100", 1),
    "a100x8": ("a2-highgpu-8g", "NVIDIA_TESLA_A100", 8),
    "a100-80x8": ("a2-ultragpu-8g", "NVIDIA_A100_80GB", 8),
    "h100x8": ("a3-highgpu-8g", "NVIDIA_H100_80GB", 8),
    "h200x8": ("a3-ultragpu-8g", "NVIDIA_H200_141GB", 8),
    "b200x8": ("a4-highgpu-8g", "NVIDIA_B200", 8),
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


@pytest.mark.parametrize(
    ("machine", "accelerator", "count"),
    [
        ("n1-standard-8", "", 0),
        ("n1-standard-8", "NVIDIA_TESLA_T4", 1),
        ("n1-standard-8", "NVIDIA_TESLA_V100", 2),
    ],
)
def test_flex_start_is_refused_without_a_gpu_it_provisions(machine, accelerator, count):
    profile = Profile(
        name="p", machine_type=machine, accelerator_type=accelerator, accelerator_count=count
    )
    with pytest.raises(ValueError, match="cannot use FLEX_START") as err:
        profile.with_options(scheduling="FLEX_START")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["l4x1", "a100x1", "a100-80x8", "h100x8", "h200x8", "b200x8"])
def test_flex_start_is_accepted_on_the_gpus_it_provisions(name):
    assert get_profile(name).with_options(scheduling="FLEX_START").scheduling == "FLEX_START"


def test_flex_start_is_refused_over_seven_days():
    a100 = get_profile("a100x1")
    assert a100.with_options(scheduling="FLEX_START", timeout_s=7 * 86400).timeout_s == 604800
    with pytest.raises(ValueError, match="over FLEX_START's 7 days"):
        a100.with_options(scheduling="FLEX_START", timeout_s=7 * 86400 + 1)
    assert a100.with_options(timeout_s=14 * 86400).timeout_s == 14 * 86400  # STANDARD may


@pytest.mark.parametrize(
    ("machine", "accelerator", "disk"),
    [
        ("a3-ultragpu-8g", "NVIDIA_H200_141GB", "pd-ssd"),  # A3 Ultra boots from Hyperdisk
        ("a4-highgpu-8g", "NVIDIA_B200", "pd-ssd"),
        ("a2-highgpu-8g", "NVIDIA_TESLA_A100", "hyperdisk-balanced"),
        ("a2-highgpu-8g", "NVIDIA_TESLA_A100", "pd-fast"),
    ],
)
def test_boot_disks_a_machine_cannot_use_are_refused(machine, accelerator, disk):
    with pytest.raises(ValueError, match="boot") as err:
        Profile(
            name="p",
            machine_type=machine,
            accelerator_type=accelerator,
            accelerator_count=8,
            boot_disk_type=disk,
        )
    assert "\n" not in str(err.value)


def test_evaluate_runs_on_one_gpu_of_the_profiles_kind():
    a100 = get_profile("a100x8").eval_step
    assert (a100.accelerator_type, a100.accelerator_count, a100.cpu, a100.memory_gb) == (
        "NVIDIA_TESLA_A100",
        1,
        12,
        85,
    )
    assert get_profile("b200x8").eval_step.accelerator_type == "NVIDIA_H100_80GB"
    assert get_profile("cpu").eval_step.accelerator_count == 0


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("36h", 129600), ("7d", 604800)])
def test_timeouts_parse(text, seconds):
    assert parse_timeout(text) == seconds


def test_every_profile_is_valid_and_named_after_its_key():
    for name, profile in PROFILES.items():
        assert profile.name == name
        Profile(**{**profile.__dict__})  # revalidates
