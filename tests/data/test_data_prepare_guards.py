"""Probe 17 on `dupo-verl prepare`: no NaN/inf gold label, no number passing for a problem, no
traceback for a deep or huge JSON line, notes about kept rows only, and no file replaced, misnamed
or read from an empty option without the user asking."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dupo_verl.cli import main
from dupo_verl.data import open_source
from dupo_verl.data.prepare import summary_path, val_path


def problem(i: int) -> str:
    return f"Tom has {i + 3} apples and buys {2 * i + 5} more. How many now?"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def prepare_math(src: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "math", "--input", str(src), "--output", str(out), "--no-progress", *extra])


def summary_of(out: Path) -> dict:
    return json.loads(summary_path(out).read_text(encoding="utf-8"))


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def argparse_error(argv: list[str], capsys) -> str:
    """The `argument --x: ...` line of an option refused at the door (exit 2, no traceback)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# -- 1: a non-finite gold answer is a counted skip -----------------------------------------------------


def test_a_non_finite_gold_answer_is_a_counted_skip(tmp_path: Path, capsys) -> None:
    answers = ["NaN", "Infinity", "-Infinity", "1e999", "18", '"7"']  # JSON text of each answer
    src = write_lines(
        tmp_path / "m.jsonl", [f'{{"problem": "{problem(i)}", "answer": {a}}}' for i, a in enumerate(answers)]
    )
    out = tmp_path / "m.parquet"
    assert prepare_math(src, out, "--answer-key", "answer") == 0
    assert "rows skipped: bad_answer 4" in capsys.readouterr().out
    summary = summary_of(out)
    assert summary["rows_kept"] == 2 and summary["rows_skipped"] == {"bad_answer": 4}
    assert all("'answer'" in e and "not a finite number" in e for e in summary["errors"])
    assert [r["reward_model"]["ground_truth"] for r in pq.read_table(out).to_pylist()] == ["18", "7"]


def test_a_nan_gold_answer_in_parquet_is_a_counted_skip(tmp_path: Path) -> None:
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"problem": [problem(0), problem(1)], "answer": [math.nan, 8.0]}), src)
    assert prepare_math(src, out, "--answer-key", "answer") == 0
    assert summary_of(out)["rows_skipped"] == {"bad_answer": 1}
    assert [r["reward_model"]["ground_truth"] for r in pq.read_table(out).to_pylist()] == ["8.0"]


# -- 2: a JSON line too deep or too long to read is a counted skip -------------------------------------


def test_a_deep_or_huge_json_line_is_a_counted_skip(tmp_path: Path, capsys) -> None:
    deep = '{"problem": "x", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge = '{"problem": "x", "x": ' + "9" * 5000 + "}"
    src = write_lines(tmp_path / "m.jsonl", [json.dumps({"problem": problem(0)}), deep, huge])
    records = list(open_source(src).records)
    assert [r.error[0] if r.error else None for r in records] == [None, "bad_json", "bad_json"]
    out = tmp_path / "m.parquet"
    assert prepare_math(src, out) == 0
    assert "Traceback" not in capsys.readouterr().err
    summary = summary_of(out)
    assert summary["rows_kept"] == 1 and summary["rows_skipped"] == {"bad_json": 2}
    assert summary["errors"][0] == "m.jsonl:2: JSON nested too deeply to read"
    assert summary["errors"][1].startswith("m.jsonl:3: Exceeds the limit")


def test_a_json_file_too_deep_to_read_is_one_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "m.json"
    src.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert prepare_math(src, tmp_path / "o.parquet") == 2
    assert "JSON nested too deeply to read" in one_error_line(capsys.readouterr().err)


# -- 3: a number is not a problem; notes count kept rows ----------------------------------------------


def test_a_number_as_problem_is_a_counted_bad_problem(tmp_path: Path) -> None:
    numbers = ["123", "1e308", "NaN", "12.5"]
    src = write_lines(
        tmp_path / "m.jsonl", [json.dumps({"problem": problem(0)}), *(f'{{"problem": {n}}}' for n in numbers)]
    )
    out = tmp_path / "m.parquet"
    assert prepare_math(src, out) == 0
    summary = summary_of(out)
    assert summary["rows_kept"] == 1 and summary["rows_skipped"] == {"bad_problem": 4}
    assert summary["errors"][0] == "row 1: field 'problem' (problem) must be text, got int"
    assert all("must be text, got float" in e for e in summary["errors"][1:])


def test_a_csv_problem_of_digits_is_text(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_text("problem\n123\n", encoding="utf-8")
    out = tmp_path / "m.parquet"
    assert prepare_math(src, out) == 0
    (row,) = pq.read_table(out).to_pylist()
    assert (
        row["prompt"][0]["content"].startswith("123")
        and row["extra_info"]["dupo"]["duals"][0]["value"] == "123"
    )


def test_notes_count_kept_rows_only(tmp_path: Path, capsys) -> None:
    rows = [{"problem": problem(i)} for i in range(3)] + [{"problem": "no numbers here"}] * 2
    rows.append({"problem": problem(3), "answer": "7"})  # (no kept row with an answer is a typo: an error)
    src = write_lines(tmp_path / "m.jsonl", [json.dumps(r) for r in rows])
    out = tmp_path / "m.parquet"
    assert prepare_math(src, out, "--answer-key", "answer") == 0
    summary = summary_of(out)
    assert summary["rows_kept"] == 4 and summary["rows_skipped"] == {"no_dual_question": 2}
    assert summary["notes"] == {"missing_answer": 3}
    assert "notes on kept rows: missing_answer 3" in capsys.readouterr().out


# -- 4: files: .parquet only, never replaced without --overwrite; no empty option ----------------------


@pytest.mark.parametrize("command", [["math", "--input", "x.jsonl"], ["two-sum", "--num-problems", "5"]])
def test_an_output_not_named_parquet_is_refused(command: list[str], tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.jsonl"
    line = argparse_error(["prepare", *command, "--output", str(out)], capsys)
    assert "argument --output: must end in .parquet" in line and not out.exists()


@pytest.mark.parametrize("existing", ["train", "val", "summary"])
def test_an_existing_output_is_replaced_only_with_overwrite(existing: str, tmp_path: Path, capsys) -> None:
    src = write_lines(tmp_path / "m.jsonl", [json.dumps({"problem": problem(i)}) for i in range(5)])
    out = tmp_path / "s.parquet"
    path = {"train": out, "val": val_path(out), "summary": summary_path(out)}[existing]
    path.write_bytes(b"an earlier run's file")
    assert prepare_math(src, out) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: prepare math: ") and str(path) in line and "--overwrite" in line
    assert path.read_bytes() == b"an earlier run's file"
    written = [p.name for p in tmp_path.iterdir() if p.name.startswith("s")]
    assert written == [path.name]  # nothing else written either
    assert prepare_math(src, out, "--overwrite") == 0  # today's behaviour: replaced, a stale val removed
    assert pq.read_table(out).num_rows == 5 and not val_path(out).exists()
    assert summary_of(out)["removed"] == ([str(val_path(out))] if existing == "val" else [])


def test_two_sum_refuses_an_existing_output_too(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ts.parquet"
    argv = ["prepare", "two-sum", "--output", str(out), "--num-problems", "20", "--no-progress"]
    assert main(argv) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--seed", "1"]) == 2
    assert "exists; pass --overwrite" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == before
    assert main([*argv, "--seed", "1", "--overwrite"]) == 0 and out.read_bytes() != before


IO = ["--input", "IN", "--output", "OUT"]
TRANSLATION = ["translation", *IO, "--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn"]


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (["math", "--input", "IN"], "--output", ""),
        (["math", "--output", "OUT"], "--input", ""),
        (["math", *IO], "--agent-name", ""),
        (["math", *IO], "--agent-name", "  "),
        (["math", *IO], "--data-source", ""),
        (["math", *IO], "--problem-key", ""),
        (["math", *IO], "--answer-key", ""),
        (["math", *IO], "--id-key", ""),
        (["math", *IO], "--split", ""),
        (["span", *IO], "--text-key", ""),
        (["span", *IO], "--answer-key", ""),
        (TRANSLATION, "--source-key", ""),
        (TRANSLATION, "--reference-key", ""),
        (TRANSLATION, "--reference", ""),
        (TRANSLATION, "--src-name", ""),
        (["task", "--name", "math", *IO], "--import", ""),
        (["two-sum", "--num-problems", "5", "--output", "OUT"], "--agent-name", ""),
    ],
)
def test_an_empty_option_is_refused(
    command: list[str], option: str, value: str, tmp_path: Path, capsys
) -> None:
    src = write_lines(tmp_path / "x.jsonl", [json.dumps({"problem": problem(0), "text": problem(0)})])
    out = tmp_path / "o.parquet"
    argv = [{"IN": str(src), "OUT": str(out)}.get(a, a) for a in command]
    line = argparse_error(["prepare", *argv, option, value], capsys)
    assert f"argument {option}: must not be empty" in line and not out.exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--key", "problem=", "--key problem= names no column"),
        ("--key", "problem= ", "--key problem= names no column"),
        ("--param", "timeout=NaN", "--param timeout: NaN is not a finite number"),
        ("--param", "timeout=1e999", "--param timeout: 1e999 is not a finite number"),
        ("--param", "timeout=" + "[" * 100_000, "--param timeout: JSON nested too deeply to read"),
    ],
)
def test_prepare_task_refuses_an_empty_column_or_a_non_finite_param(
    flag: str, value: str, message: str, tmp_path: Path, capsys
) -> None:
    src = write_lines(tmp_path / "x.jsonl", [json.dumps({"problem": problem(0)})])
    out = tmp_path / "o.parquet"
    argv = ["prepare", "task", "--name", "math", "--input", str(src), "--output", str(out), flag, value]
    assert main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err) and not out.exists()
