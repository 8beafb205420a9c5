"""What the `liftoff` command line refuses before anything runs or is sent, and how it helps:
the pre-flight checks of issue 15 (negative steps, NaN thresholds, raw keys for secrets),
"did you mean", liftoff.toml's keys, a loopback endpoint with nothing behind it, `--version`,
help on every flag, `run --help` with the parameters and presets, `liftoff presets`.

    .venv/bin/python -m pytest -q tests/pipelines/test_cli_checks.py
"""

import socket
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main, parser
from pipelines.cli_help import undocumented
from tests.support.trainer_runs import free_port

RAW_KEY = "wk-0123456789abcdef0123456789abcdef"  # what a W&B API key looks like: never echoed
ROOT = "gs://lf-never-created/root"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
WHERE = ["--project", "p", "--region", "europe-west4", "--pipeline-root", ROOT]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("PROJECT", "REGION", "PIPELINE_ROOT", "SERVICE_ACCOUNT", "API_ENDPOINT"):
        monkeypatch.delenv(f"LIFTOFF_{name}", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, command: str) -> str:
    assert err.count("\n") == 1 and err.startswith(f"liftoff {command}: error: "), err
    return err.removeprefix(f"liftoff {command}: error: ").strip()


REFUSED = [
    (["run", "llm-finetune", "--param", "max_steps=-5"], "max_steps: -5 must be >= 0"),
    (["run", "llm-finetune", "--param", "seed=-7"], "seed: -7 must be >= 0"),
    (["submit", "llm-finetune", *WHERE, "--param", "max_steps=-5"], "max_steps: -5"),
    (["submit", "llm-finetune", *WHERE, "--param", "gate_threshold=nan"], "gate_threshold: nan"),
    (["compile", "llm-finetune", "--param", "gate_threshold=inf"], "gate_threshold: inf must"),
    (["submit", "llm-finetune", *WHERE, "--dry-run", "--param", f"wandb_secret={RAW_KEY}"], ""),
    (["run", "llm-finetune", "--param", f"hf_secret={RAW_KEY}"], "hf_secret: "),
    (["run", "llm-finetune", "--set", f"wandb.secret={RAW_KEY}"], "overrides: wandb.secret: "),
    (["run", "llm-finetun"], "unknown pipeline 'llm-finetun'; did you mean 'llm-finetune'?"),
    (["run", "llm-finetune", "--preset", "debgu"], "did you mean 'debug'?"),
    (
        ["run", "llm-finetune", "--set", "optim.lrr=1"],
        "did you mean 'optim.lr'? (optim fields: lr,",
    ),
    (["run", "llm-finetune", "--set", "optm.lr=1"], "did you mean 'optim'? (sections: model,"),
    (["run", "llm-finetune", "--param", "max_stepz=1"], "did you mean 'max_steps'?"),
]


@pytest.mark.parametrize(("argv", "named"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_before_anything_runs_with_one_line_and_no_secret_echoed(capsys, argv, named):
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert named in one_line(err, argv[0])
    assert RAW_KEY not in err  # a key given where a secret's name belongs is never shown
    assert not list(Path(".").iterdir())  # nothing written, no .liftoff


def test_unknown_liftoff_toml_keys_are_refused_naming_the_allowed_ones(capsys, tmp_path):
    (tmp_path / "liftoff.toml").write_text('[vertex]\nprojet = "x"\n')
    code, _, err = cli(capsys, "submit", "llm-finetune", "--dry-run")
    message = one_line(err, "submit")
    assert code == 2 and "[vertex] unknown key 'projet'; did you mean 'project'?" in message
    assert "allowed: project, region, pipeline_root, service_account, api_endpoint" in message

    (tmp_path / "liftoff.toml").write_text('hardware = "a100x8"\n[vertex]\nproject = "x"\n')
    code, _, err = cli(capsys, "submit", "llm-finetune", "--dry-run")
    assert code == 2 and "unknown key 'hardware': options go in the [vertex] table" in err


@pytest.fixture
def guarded(monkeypatch):
    """Every host this process looks up or connects to; anything but loopback is refused (and
    recorded: the SDK swallows the bucket check's errors)."""
    attempts = []
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guard_connect(self, address):
        attempts.append(address)
        if address[0] not in LOOPBACK:
            raise ConnectionRefusedError(f"a connection to {address} would leave this machine")
        return connect(self, address)

    def guard_lookup(host, port, *args, **kwargs):
        if host not in LOOPBACK:
            attempts.append((host, port))
            raise socket.gaierror(f"{host} is not loopback")
        return lookup(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guard_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guard_lookup)
    return attempts


def test_a_loopback_endpoint_with_nothing_behind_it_fails_at_once(capsys, guarded):
    port = free_port()  # nothing listens there
    code, out, err = cli(
        capsys,
        *["submit", "llm-finetune", *WHERE, "--api-endpoint", f"http://127.0.0.1:{port}"],
    )
    assert code == 1 and out == ""
    assert one_line(err, "submit") == (
        f"Vertex AI endpoint http://127.0.0.1:{port}: nothing answers (Connection refused)"
    )
    assert guarded == [("127.0.0.1", port)]  # one try, no retries, nothing elsewhere


def test_a_loopback_endpoint_never_sends_the_bucket_check_to_cloud_storage(
    capsys, guarded, vertex_fake
):
    code, out, err = cli(
        capsys,
        *["submit", "llm-finetune", *WHERE, "--api-endpoint", vertex_fake.url],
        *["--service-account", "sa@p.iam.gserviceaccount.com"],
    )
    assert (code, err) == (0, ""), err
    assert out.startswith("submitted projects/p/locations/europe-west4/pipelineJobs/llm-finetune-")
    assert guarded and {host for host, _ in guarded} == {"127.0.0.1"}


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("liftoff 0.")


def test_every_flag_of_every_command_has_help():
    missing = undocumented(parser())
    assert missing == []
    assert len([a for a in parser()._actions]) >= 2  # guard: the walk sees the parsers


def test_run_help_lists_the_pipelines_parameters_and_presets(capsys):
    with pytest.raises(SystemExit):
        main(["run", "vlm-ddp", "--help"])
    out = capsys.readouterr().out
    assert "parameters (--param NAME=VALUE; vlm-ddp's):" in out
    assert (
        "  gate_threshold     register and deploy only if gate_metric >= this (default 0.4)" in out
    )
    assert "\n  siglip-so400m-qwen2.5-1.5b " in out and "\n  qwen2.5-7b-lora " not in out

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "llm-finetune:" in out and "vlm-ddp:" in out and "max_steps" in out


def test_presets_lists_each_with_a_line(capsys):
    code, out, _ = cli(capsys, "presets", "llm-finetune")
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == [
        *("debug", "llama-3.2-1b", "llama-3.1-8b-lora", "qwen2.5-0.5b", "qwen2.5-7b-lora")
    ]
    assert "Qwen/Qwen2.5-7B-Instruct; LoRA, 1000 steps, batch 32, lr 0.0001" in lines[-1]
    code, out, _ = cli(capsys, "presets")
    assert "vlm-ddp:" in out.splitlines() and "  clip-l336-qwen2.5-7b-lora" in out


def test_print_config_writes_the_resolved_trainer_config_as_a_recipe(capsys):
    code, out, err = cli(
        capsys,
        *["run", "llm-finetune", "--param", "max_steps=7", "--set", "optim.lr=0.002"],
        "--print-config",
    )
    recipe = yaml.safe_load(out)
    assert (code, err) == (0, "")
    assert recipe["preset"] == "debug" and recipe["train"]["max_steps"] == 7
    assert recipe["optim"]["lr"] == 0.002 and recipe["model"]["num_layers"] == 4
    assert not Path(".liftoff").exists()  # printed, not run
