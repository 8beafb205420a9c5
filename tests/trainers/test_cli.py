"""`python -m trainers.llm` (and `.vlm`) as a user meets it: help, and the one error rule: bad input
is one line wherever it is found (exit 2 for a setting, 1 for data), anything else keeps its
traceback."""

import subprocess
import sys

import pytest

from tests.support.trainer_runs import REPO, TINY, TINY_VLM, run_trainer, trainer_env


def test_help_opens_with_a_cpu_recipe():
    done = subprocess.run(
        [sys.executable, "-m", "trainers.llm", "--help"],
        cwd=REPO,
        env=trainer_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "CPU recipe" in done.stdout and "python -m trainers.llm --preset debug" in done.stdout


@pytest.mark.parametrize(
    ("lines", "where", "problem"),
    [
        (
            ['{"prompt": "a", "response": "b"}', '{"prompt": "a", "response": '],
            ":2:",
            "malformed JSON",
        ),
        (['{"prompt": "a"}'], ":1:", "missing field 'response'"),
        (['{"prompt": "a", "response": 3}'], ":1:", "must be a string"),
        ([], "", "no usable records"),
    ],
)
def test_bad_records_stop_with_one_line_naming_file_and_line(tmp_path, lines, where, problem):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(lines))
    done = run_trainer(
        [
            *TINY,
            "--data",
            str(data),
            "--output-dir",
            str(tmp_path / "m"),
            "--checkpoint-dir",
            str(tmp_path / "c"),
        ]
    )
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and "Traceback" not in done.stderr
    assert f"{data}{where}" in message[0] and problem in message[0]
    assert not (tmp_path / "m").exists()


def test_non_utf8_bytes_are_named(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_bytes(b'{"prompt": "a", "response": "b"}\n{"prompt": "\xff\xfe", "response": "b"}\n')
    done = run_trainer([*TINY, "--data", str(data), "--output-dir", str(tmp_path / "m")])
    assert done.returncode == 1
    assert f"{data}:2: not UTF-8" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--set", "train.micro_batch_size=0"], "train.micro_batch_size=0 is invalid"),
        (["--set", "optim.nope=1"], "no config field 'optim.nope'"),
        (["--set", "data.overlong=maybe"], "data.overlong='maybe' is invalid"),
        (["--preset", "gpt-9"], "--preset 'gpt-9' is unknown"),
    ],
)
def test_bad_config_is_a_usage_error(args, problem):
    done = run_trainer([*TINY, *args])
    assert done.returncode == 2
    assert problem in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_found_during_the_run_is_one_line_too(tmp_path):
    done = run_trainer([*TINY, "--set", "data.eval_fraction=0", "--output-dir", str(tmp_path)])
    assert done.returncode == 2
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and "Traceback" not in done.stderr
    assert message[0].startswith("error: data: the eval split is empty (data.eval_fraction=0.0)")


def test_the_vlm_trainer_follows_the_same_rule(tmp_path, capsys):
    from trainers.vlm.__main__ import main

    args = [*TINY_VLM, "--set", "data.synthetic_examples=40", "--output-dir", str(tmp_path)]
    assert main([*args, "--set", "train.global_batch_size=512"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: train.global_batch_size=512 is larger than the")


def test_anything_else_keeps_its_traceback():
    """A failure that is not the user's (here a shape bug) is not turned into a one-liner:
    it leaves the entrypoint with its traceback, and Python exits 1."""
    from trainers.common import entrypoint
    from trainers.llm.__main__ import parser
    from trainers.llm.presets import get_preset

    def train(cfg, *, callbacks):
        raise ValueError("mat1 and mat2 shapes cannot be multiplied (8x64 and 32x64)")

    with pytest.raises(ValueError, match="shapes cannot be multiplied"):
        entrypoint.run("trainers.llm", [*TINY], parser=parser(), get_preset=get_preset, train=train)
