"""The `liftoff` command line with vlm-ddp: listed, compiled on its own default hardware (8×A100
nodes) with --nodes and --spot, and a dry-run submit of the same spec. The command wiring shared
with llm-finetune is tested in test_cli.py.

.venv/bin/python -m pytest -q tests/pipelines/test_cli_vlm.py
"""

import json

import pytest
import yaml

from pipelines.cli import main
from tests.support.compiled import constant, train_input

A100X8 = {
    "machine_type": "a2-highgpu-8g",
    "accelerator_type": "NVIDIA_TESLA_A100",
    "accelerator_count": 8,
}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No LIFTOFF_* settings or liftoff.toml from outside (vertex_fake, set up after this, sets
    LIFTOFF_API_ENDPOINT again); the images: tests/pipelines/conftest.py."""
    for name in ("PROJECT", "REGION", "PIPELINE_ROOT", "SERVICE_ACCOUNT", "API_ENDPOINT"):
        monkeypatch.delenv(f"LIFTOFF_{name}", raising=False)
    monkeypatch.setenv("LIFTOFF_GIT_SHA", "0123456789abcdef")
    monkeypatch.chdir(tmp_path)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _machines(spec: dict) -> list[tuple[int, dict]]:
    pools = train_input(spec, "worker_pool_specs")
    return [(pool["replica_count"], pool["machine_spec"]) for pool in pools]


def test_pipelines_lists_vlm_ddp(capsys):
    code, out, err = cli(capsys, "pipelines")

    assert (code, err) == (0, "")
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()}
    assert {"llm-finetune", "vlm-ddp"} <= set(rows)
    assert "vision-language" in rows["vlm-ddp"] and "DDP" in rows["vlm-ddp"]


def test_compile_defaults_to_one_node_of_8_a100s(capsys, tmp_path):
    code, out, err = cli(capsys, "compile", "vlm-ddp")

    assert (code, err) == (0, "")
    assert out.startswith("compiled vlm-ddp for a100x8 ")
    spec = yaml.safe_load((tmp_path / "vlm-ddp.yaml").read_text())
    assert _machines(spec) == [(1, A100X8)]
    assert train_input(spec, "strategy") == "STANDARD"


def test_compile_two_spot_nodes(capsys, tmp_path):
    code, out, err = cli(capsys, "compile", "vlm-ddp", "--nodes", "2", "--spot", "-o", "x.yaml")

    assert (code, err) == (0, "")
    assert out.rstrip().endswith(": x.yaml")
    spec = yaml.safe_load((tmp_path / "x.yaml").read_text())
    assert _machines(spec) == [(1, A100X8)] * 2
    assert train_input(spec, "strategy") == "SPOT"
    assert train_input(spec, "restart_job_on_worker_restart") is True
    train = spec["root"]["dag"]["tasks"]["train"]
    assert constant(train, "nproc_per_node") == 8 and constant(train, "trainer") == "vlm"


def test_submit_dry_run_shows_the_multi_node_flex_start_spec(capsys, vertex_fake, gcs_emulator):
    destination = ["--project", "p", "--region", "europe-west4", "--pipeline-root", "gs://b/r"]
    code, out, err = cli(
        capsys, "submit", "vlm-ddp", "--dry-run", *destination, "--nodes", "3", "--flex-start"
    )

    assert (code, err) == (0, "")
    body = json.loads(out)["pipelineJob"]
    spec = body["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "vlm-ddp"
    assert _machines(spec) == [(1, A100X8), (2, A100X8)]  # primary + (nodes - 1) workers
    assert train_input(spec, "strategy") == "FLEX_START"
    assert body["labels"] == {"liftoff-pipeline": "vlm-ddp"}
    assert vertex_fake.requests == []
