"""`liftoff launch queue-config`: the Vertex queue configuration from the pipelines' hardware
profiles, checked as the pipelines check them."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from pipelines.cli import main
from pipelines.hardware import get_profile
from pipelines.launch.queue_config import RUN_KEYS, SPEC_KEYS, queue_config

SA = "trainer@p.iam.gserviceaccount.com"
BASE = f"launch queue-config --service-account {SA} --staging-bucket gs://p-liftoff/launch/"


def _cli(capsys, argv: str) -> tuple[int, str, str]:
    code = main(shlex.split(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_spot_two_nodes_of_a100x8(capsys):
    code, out, _ = _cli(capsys, BASE + " --hardware a100x8 --nodes 2 --spot")
    assert code == 0
    config = yaml.safe_load(out)
    assert set(config) == {"spec", "run"}
    primary, workers = config["spec"]["worker_pool_specs"]
    assert [primary["replica_count"], workers["replica_count"]] == [1, 1]
    assert primary["machine_spec"] == {
        "machine_type": "a2-highgpu-8g",
        "accelerator_type": "NVIDIA_TESLA_A100",
        "accelerator_count": 8,
    }
    assert primary["disk_spec"] == {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 500}
    assert primary["container_spec"]["image_uri"] == "${image_uri}"
    assert primary == workers | {"replica_count": 1}
    assert config["spec"]["base_output_dir"] == "gs://p-liftoff/launch/${project_name}/${run_id}"
    assert config["spec"]["region"] == "us-central1"
    assert config["run"] == {
        "service_account": SA,
        "timeout": 7 * 24 * 3600,
        "restart_job_on_worker_restart": True,
        "scheduling_strategy": "SPOT",
    }
    assert "&id" not in out  # plain YAML: no anchors for the W&B UI to choke on


def test_flex_start_waits_and_the_file_is_what_is_printed(capsys, tmp_path):
    path = tmp_path / "q.json"
    argv = BASE + f" --hardware l4x1 --flex-start --region europe-west4 -o {path}"
    code, out, _ = _cli(capsys, argv)
    assert code == 0 and str(path) in out
    written = json.loads(path.read_text())
    profile = get_profile("l4x1").with_options(scheduling="FLEX_START")
    expected = queue_config(
        profile, service_account=SA, staging_bucket="gs://p-liftoff/launch", region="europe-west4"
    )
    assert written == expected
    assert written["run"]["scheduling_strategy"] == "FLEX_START"
    assert written["run"]["max_wait_duration"] == 3600
    assert len(written["spec"]["worker_pool_specs"]) == 1


def test_only_keys_some_runner_reads():
    config = queue_config(
        get_profile("h200x8").with_options(nodes=3, scheduling="SPOT"),
        service_account=SA,
        staging_bucket="gs://b",
        wandb_secret="projects/p/secrets/wandb/versions/2",
    )
    assert set(config["spec"]) <= SPEC_KEYS and set(config["run"]) <= RUN_KEYS
    assert config["run"]["wandb_secret"] == "projects/p/secrets/wandb/versions/2"
    pools = config["spec"]["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    assert pools[0]["disk_spec"]["boot_disk_type"] == "hyperdisk-balanced"  # A3 Ultra's own


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (BASE + " --hardware cpu --flex-start", "--flex-start: cpu"),
        (BASE + " --hardware a100x9", "--hardware: unknown profile 'a100x9'"),
        (BASE + " --hardware l4x1 --nodes 0", "--nodes: 0 must be >= 1"),
        (BASE + " --hardware l4x1 --region Central", "--region: 'Central' is not valid"),
        (
            BASE + " --hardware l4x1 --wandb-secret my-key",
            "--wandb-secret: not a Secret Manager version name",
        ),
        (
            f"launch queue-config --hardware l4x1 --service-account {SA} --staging-bucket b",
            "--staging-bucket: 'b' is not valid",
        ),
        (
            "launch queue-config --hardware l4x1 --service-account me --staging-bucket gs://b",
            "--service-account: 'me' is not valid",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, argv, message):
    code, out, err = _cli(capsys, f"{argv} -o {tmp_path / 'q.yaml'}")
    assert code == 2 and out == ""
    assert err.startswith("liftoff launch: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "q.yaml").exists()
