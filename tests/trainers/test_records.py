"""trainers.common.records: JSONL/Parquet reading, one-line errors that name file and line, skip
mode, directories and fingerprints. Records are checked with trainers.lm.chat.check_record.

Run: `.venv/bin/pytest -q tests/trainers/test_records.py`.
"""

from __future__ import annotations

import json

import pytest

from trainers.common.config import ConfigError
from trainers.common.records import DataError, fingerprint, read_records, split_records
from trainers.lm.chat import check_record

GOOD = [
    {"prompt": "what is 1+1?", "response": "2"},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    {"prompt": "é ünïcode ✓", "response": "ok"},
]


def _write_lines(path, lines: list[bytes | str | dict]) -> str:
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            f.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return str(path)


def _read(uri: str, **kwargs):
    return read_records(uri, validate=check_record, **kwargs)


def _error(uri: str) -> str:
    with pytest.raises(DataError) as err:
        _read(uri)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- good input -----------------------------------------------------------------------------------


def test_good_jsonl_reads_every_record_in_order(tmp_path):
    path = _write_lines(tmp_path / "train.jsonl", GOOD)
    assert _read(path) == (GOOD, 0)


def test_blank_lines_and_crlf_are_ignored(tmp_path):
    path = _write_lines(
        tmp_path / "train.jsonl",
        ["", json.dumps(GOOD[0]), "   ", json.dumps(GOOD[1]) + "\r", json.dumps(GOOD[2])],
    )
    assert _read(path) == (GOOD, 0)


def test_file_without_trailing_newline(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in GOOD))
    assert _read(str(path)) == (GOOD, 0)


# --- bad input: one line naming file and line ----------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ('{"prompt": "x", "response": ', "malformed JSON"),
        ("{'prompt': 'x'}", "malformed JSON"),
        ('{"prompt": "x"}', "missing field 'response'"),
        ('{"prompt": ["x"], "response": "y"}', "field 'prompt' must be a string, got list"),
        ('[{"prompt": "x", "response": "y"}]', "expected a JSON object, got list"),
        ('"just a string"', "expected a JSON object, got str"),
        (b'{"prompt": "\xff\xfe", "response": "y"}', "not UTF-8 (byte 12)"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "messages[0].role='bot'"),
    ],
)
def test_bad_line_raises_with_path_and_line_number(tmp_path, bad, problem):
    # Line 1 good, line 2 blank, line 3 good, line 4 bad: numbers count the blank line too.
    path = _write_lines(tmp_path / "train.jsonl", [GOOD[0], "", GOOD[1], bad, GOOD[2]])
    message = _error(path)
    assert message.startswith(f"{path}:4: ")
    assert problem in message


def test_empty_file_raises_naming_it(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    message = _error(str(path))
    assert message.startswith(str(path)) and "no usable records" in message


def test_file_of_blank_lines_raises(tmp_path):
    path = _write_lines(tmp_path / "blank.jsonl", ["", "  ", ""])
    assert "no usable records" in _error(path)


def test_missing_file_raises(tmp_path):
    path = str(tmp_path / "nope.jsonl")
    assert _error(path) == f"{path}: no such file"


def test_directory_without_data_files_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    message = _error(str(tmp_path))
    assert message.startswith(str(tmp_path)) and ".jsonl/.parquet" in message


# --- skip mode ------------------------------------------------------------------------------------


def test_skip_keeps_every_good_record_in_order_and_counts_bad(tmp_path):
    lines = [
        GOOD[0],
        "{not json",
        b"\xc3\x28",
        GOOD[1],
        "",
        '{"prompt": "x"}',
        "[1, 2]",
        GOOD[2],
        '{"prompt": 1, "response": "y"}',
    ]
    path = _write_lines(tmp_path / "train.jsonl", lines)
    records, skipped = _read(path, on_bad="skip")
    assert records == GOOD
    assert skipped == 5


def test_skip_with_nothing_usable_still_raises_with_the_count(tmp_path):
    path = _write_lines(tmp_path / "train.jsonl", ["{bad", '{"prompt": "x"}'])
    with pytest.raises(DataError, match=r"no usable records \(2 skipped\)"):
        _read(path, on_bad="skip")


# --- parquet and directories ----------------------------------------------------------------------


def _write_parquet(path, records: list[dict]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records), str(path))
    return str(path)


def test_parquet_reads_the_same_records_as_jsonl(tmp_path):
    records = [GOOD[0], GOOD[2], {"prompt": "a", "response": "b"}]
    jsonl = _write_lines(tmp_path / "a.jsonl", records)
    parquet = _write_parquet(tmp_path / "a.parquet", records)
    assert _read(parquet) == (records, 0) == _read(jsonl)
    assert fingerprint(_read(parquet)[0]) == fingerprint(_read(jsonl)[0])


def test_parquet_bad_row_is_named_by_row_number(tmp_path):
    records = [GOOD[0], {"prompt": "x", "response": None}, GOOD[2]]
    path = _write_parquet(tmp_path / "train.parquet", records)
    message = _error(path)
    assert message == f"{path}: row 2: field 'response' must be a string, got NoneType"
    assert _read(path, on_bad="skip") == ([GOOD[0], GOOD[2]], 1)


def test_corrupt_parquet_raises_one_line(tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    message = _error(str(path))
    assert message.startswith(f"{path}: not a readable Parquet file")


def test_directory_is_read_in_name_order(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_lines(data / "b.jsonl", [GOOD[2]])
    _write_lines(data / "a.jsonl", [GOOD[0], GOOD[1]])
    (data / "README.md").write_text("not data")
    assert _read(str(data)) == (GOOD, 0)


def test_error_in_a_directory_names_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write_lines(data / "a.jsonl", [GOOD[0]])
    bad = _write_lines(data / "b.jsonl", [GOOD[1], '{"prompt": "x"}'])
    assert _error(str(data)).startswith(f"{bad}:2: missing field 'response'")


# --- fingerprint ----------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_content_sensitive():
    same = [{"response": "2", "prompt": "what is 1+1?"}, *GOOD[1:]]  # key order differs
    assert fingerprint(GOOD) == fingerprint(same) == fingerprint(json.loads(json.dumps(GOOD)))
    assert len(fingerprint(GOOD)) == 16
    changed = [{"prompt": "what is 1+1?", "response": "3"}, *GOOD[1:]]
    assert fingerprint(changed) != fingerprint(GOOD)
    assert fingerprint(GOOD[::-1]) != fingerprint(GOOD)
    assert fingerprint(GOOD[:2]) != fingerprint(GOOD)


# --- the split every trainer and the prepare step share ----------------------------------------


def _located(records: list[dict], source: str = "f") -> list[tuple[str, dict]]:
    return [(f"{source}:{i + 1}", r) for i, r in enumerate(records)]


def test_split_removes_duplicates_within_and_across_the_splits():
    a, b, c = ({"prompt": f"q{i}", "response": "r"} for i in range(3))
    split = split_records(
        _located([a, b, a, c, b]),
        evals=_located([c, c, {"prompt": "new", "response": "r"}]),
        eval_fraction=0.5,
    )
    assert split.train_records == [a, b, c]
    assert split.train == [("f:1", a), ("f:2", b), ("f:4", c)]  # first occurrences, where they are
    assert split.eval_records == [{"prompt": "new", "response": "r"}]  # c is a training record
    assert split.duplicates_removed == 2 + 1 + 1  # a and b again; c twice in eval; c in train


def test_split_by_content_hash_keeps_equal_records_on_one_side():
    records = [{"prompt": f"q{i}", "response": "r"} for i in range(200)]
    split = split_records(_located(records + records[:50]), evals=None, eval_fraction=0.2)
    assert split.duplicates_removed == 50
    assert sorted(map(str, split.train_records + split.eval_records)) == sorted(map(str, records))
    assert 0 < len(split.eval) < 100


def test_an_empty_eval_split_is_a_config_error():
    records = _located([{"prompt": "q", "response": "r"}])
    with pytest.raises(ConfigError, match=r"^data: the eval split is empty"):
        split_records(records, evals=None, eval_fraction=0.0)
    with pytest.raises(ConfigError, match="not training records"):
        split_records(records, evals=records, eval_fraction=0.0)


def test_the_trainer_reads_raw_records_as_the_prepare_step_writes_them(tmp_path):
    """`python -m trainers.llm --data raw.jsonl` trains on the records the pipeline's prepare
    step would: duplicates removed, no eval record in train."""
    from tests.support.trainer_runs import TINY
    from trainers.common import prepared
    from trainers.llm.__main__ import parser, resolve_config
    from trainers.llm.data import load_data, prepare

    records = [{"prompt": f"What is {i} + 1?", "response": str(i + 1)} for i in range(60)]
    raw = _write_lines(tmp_path / "raw.jsonl", records + records[:10])
    evals = _write_lines(tmp_path / "eval.jsonl", records[:5] + [{"prompt": "x", "response": "y"}])
    cfg = resolve_config(parser().parse_args([*TINY, "--data", raw, "--eval-data", evals]))
    data = load_data(cfg)
    assert data.train_records == records and data.duplicates_removed == 10 + 5
    assert data.eval_records == [{"prompt": "x", "response": "y"}]
    prepare(cfg, train_dir=str(tmp_path / "train"), eval_dir=str(tmp_path / "eval"))
    assert prepared.read_records(str(tmp_path / "train")) == data.train_records
    assert prepared.read_records(str(tmp_path / "eval")) == data.eval_records
