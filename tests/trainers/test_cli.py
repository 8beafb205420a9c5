"""`python -m trainers.llm` as a user meets it: help, and one-line errors for bad input."""

import subprocess
import sys

import pytest

from tests.support.trainer_runs import REPO, TINY, run_trainer, trainer_env


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
