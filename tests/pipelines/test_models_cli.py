"""`liftoff models` (list, show, alias) and `liftoff serve`, on a real registry of tiny models.

.venv/bin/python -m pytest -q tests/pipelines/test_models_cli.py
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import models_cli
from pipelines.cli import main, parser
from serving.registry import LocalRegistry

WANDB_RUN = {"id": "abc123", "project": "liftoff", "group": "run-7", "directory": "/r/offline-1"}


@pytest.fixture(autouse=True)
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def registry(tmp_path):
    """wd/registry with tiny-sft@1 (prod, a deploy check, a W&B run) and tiny-sft@2 (latest);
    the models are stand-ins: the registry and these commands read only config.json."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    registry = LocalRegistry(str(tmp_path / "wd" / "registry"))
    registry.register(
        "tiny-sft",
        str(model_dir),
        metrics={"exact_match": 0.25, "perplexity": 3.5},
        labels={"git_sha": "0123abcd"},
        lineage={"pipeline_run": "llm-finetune-7", "wandb_run": WANDB_RUN},
        aliases=["prod"],
    )
    check = {"checked_at": "2026-01-02T03:04:05Z", "target": "local", "healthy": True}
    registry.record_deployment("tiny-sft@1", {**check, "instances": ["2+3?"], "predictions": ["5"]})
    registry.register("tiny-sft", str(model_dir), metrics={"exact_match": 0.5})
    return registry


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str) -> None:
    assert err.count("\n") == 1 and err.startswith(f"liftoff {command}: error: "), err


def test_models_lists_the_registry(capsys, registry):
    code, out, err = cli(capsys, "models", "--workdir", "wd")
    assert (code, err) == (0, "")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["tiny-sft@1"][0] == "prod"  # `latest` has moved on to version 2
    assert "exact_match=0.250" in rows["tiny-sft@1"] and "perplexity=3.500" in rows["tiny-sft@1"]
    assert rows["tiny-sft@1"][-1] == "2026-01-02T03:04:05Z"
    assert rows["tiny-sft@2"][0] == "latest"
    assert "exact_match=0.500" in rows["tiny-sft@2"] and rows["tiny-sft@2"][-1] == "-"
    assert cli(capsys, "models", "list", "--workdir", "wd")[1] == out


def test_models_on_an_empty_workdir_says_so(capsys):
    code, out, err = cli(capsys, "models", "--workdir", "wd")
    assert (code, err) == (0, "")
    assert out.startswith("no models registered in wd/registry")


def test_show_gives_metrics_lineage_wandb_run_and_deploy_checks(capsys, registry):
    code, out, err = cli(capsys, "models", "show", "tiny-sft@prod", "--workdir", "wd")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "tiny-sft@1 (prod)"
    assert "exact_match=0.25, perplexity=3.5" in out and "git_sha=0123abcd" in out
    assert "pipeline_run=llm-finetune-7" in out
    assert "abc123 in project liftoff, group run-7: offline, /r/offline-1" in out
    assert "wandb sync /r/offline-1" in out
    assert lines[-1].strip() == "2026-01-02T03:04:05Z local healthy: '2+3?' -> '5'"
    assert f"model:    {registry.resolve('tiny-sft@1').model_dir}" in out

    code, out, err = cli(capsys, "models", "show", "tiny-sft", "--json", "--workdir", "wd")
    record = json.loads(out)
    assert (record["ref"], record["aliases"], record["lineage"].get("wandb_run")) == (
        "tiny-sft@2",
        ["latest"],
        None,
    )


def test_alias_moves_and_deletes(capsys, registry):
    code, out, err = cli(capsys, "models", "alias", "tiny-sft@2", "prod", "--workdir", "wd")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["prod -> tiny-sft@2", "tiny-sft@2 aliases: latest, prod"]
    assert registry.resolve("tiny-sft@1").aliases == []

    code, out, err = cli(
        capsys, "models", "alias", "tiny-sft@2", "prod", "--delete", "--workdir", "wd"
    )
    assert (code, out.splitlines()[0]) == (0, "prod removed from tiny-sft@2")
    assert registry.resolve("tiny-sft@2").aliases == ["latest"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["models", "show", "nosuch"], "model 'nosuch' is not in the registry"),
        (["models", "show", "tiny-sft@9"], "tiny-sft@9: no such version"),
        (["models", "show", "tiny-sft@staging"], "aliases: latest, prod"),
        (["models", "show", "Tiny"], "model name 'Tiny'"),
        (["models", "show", "tiny-sft@"], "after '@' comes a version"),
        (["models", "alias", "tiny-sft@1", "Prod"], "alias 'Prod'"),
        (["models", "alias", "tiny-sft@1", "7"], "alias '7'"),
        (["models", "alias", "tiny-sft@2", "prod", "--delete"], "it is on tiny-sft@1"),
        (["models", "alias", "tiny-sft@2", "latest", "--delete"], "'latest' cannot be deleted"),
        (["serve", "tiny-sft@staging"], "tiny-sft@staging: no such version or alias"),
        (["serve", "nosuch@latest"], "model 'nosuch'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_references_are_one_line_exit_2_and_change_nothing(capsys, registry, argv, named):
    before = [(v.ref, v.aliases) for v in registry.versions()]
    code, out, err = cli(capsys, *argv, "--workdir", "wd")
    assert (code, out) == (2, "")
    one_line_error(err, argv[0])
    assert named in err
    assert [(v.ref, v.aliases) for v in registry.versions()] == before


def test_serve_resolves_the_registry_and_listens_on_loopback(monkeypatch, capsys, registry):
    seen = []
    monkeypatch.setattr("serving.__main__.main", lambda argv: seen.append(argv) or 0)
    assert cli(capsys, "serve", "tiny-sft@prod", "--workdir", "wd", "--port", "9001")[0] == 0
    model_dir = registry.resolve("tiny-sft@1").model_dir
    assert seen == [["--model", model_dir, "--port", "9001", "--host", "127.0.0.1"]]
    assert cli(capsys, "serve", "gs://b/model", "--host", "0.0.0.0")[0] == 0  # not a registry ref
    assert seen[-1][1::2] == ["gs://b/model", "8080", "0.0.0.0"]


def test_a_copied_registry_serves_its_own_copy(tmp_path, registry):
    copy = tmp_path / "elsewhere" / "registry"
    shutil.copytree(registry.root, copy)
    shutil.rmtree(registry.root)
    version = LocalRegistry(str(copy)).resolve("tiny-sft@prod")
    assert version.model_dir == str(copy / "tiny-sft" / "1" / "model")
    assert (Path(version.model_dir) / "config.json").is_file()


def test_a_usage_error_is_exit_2_and_one_line_across_the_process_boundary(tmp_path):
    liftoff = str(Path(sys.executable).with_name("liftoff"))
    for argv in ([liftoff, "serve", "gone@prod"], [liftoff, "models", "show", "gone"]):
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        one_line_error(done.stderr, argv[1])
        assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_argparse_errors_exit_2(capsys):
    for argv in (["serve", "m", "--port", "http"], ["models", "alias", "m@1"], ["models", "nope"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        assert "error:" in capsys.readouterr().err


def test_every_example_parses():
    lines = [line for example in models_cli.EXAMPLES.values() for line in example.splitlines()[1:]]
    assert len(lines) >= 8
    for line in lines:
        argv = shlex.split(line.split("  #")[0])
        assert argv[0] == "liftoff" and argv[1] in ("serve", "models"), line
        assert parser().parse_args(argv[1:]).command == argv[1]
