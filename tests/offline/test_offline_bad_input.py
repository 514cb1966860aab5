"""Probe 17 for `dupo-verl rerank` / `filter` / `report`: a failed or timed-out row is never graded,
an empty result is never written, `--resume` checks content (not only positions), every malformed
value of a results file is one line naming row and field, and every option error is `error:` + exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from offline_fixtures import ScriptedBackend, arith_row, install_backend, lines, one_error_line, write_jsonl
from openai_server import TinyOpenAIServer

from dupo_verl.cli import main
from dupo_verl.offline.report import summarize

POOLS = {
    "What is 2 + 3?": ["ANSWER: 5", "ANSWER: 7"],
    "What is 4 + 6?": ["ANSWER: 10", "ANSWER: 11"],
    "What is 7 + 1?": ["ANSWER: 8", "ANSWER: 9"],
    "What is 3 + 3?": ["ANSWER: 6", "ANSWER: 6"],
}
ROWS = [arith_row(2, 3, "a"), arith_row(4, 6, "c"), arith_row(7, 1, "d")]


def strict_json(path: Path) -> dict:
    """JSON as a strict reader sees it: NaN / Infinity are refused."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def install_scripted_backend(monkeypatch, fail=None) -> list[ScriptedBackend]:
    return install_backend(monkeypatch, POOLS, fail)


def _argv(command: str, src: Path, out: Path, count: list[str], extra: tuple[str, ...]) -> list[str]:
    return [command, "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted",
            *count, "--no-progress", *extra]


def rerank_argv(src: Path, out: Path, *extra: str) -> list[str]:
    return _argv("rerank", src, out, ["--n", "2", "--dual-samples", "1"], extra)


def filter_argv(src: Path, out: Path, *extra: str) -> list[str]:
    return _argv("filter", src, out, ["--candidates", "2"], extra)


# -- 1: failed and timed-out rows are not wrong answers -----------------------------------------------


def test_rerank_where_every_row_failed_grades_nothing_and_exits_1(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    install_scripted_backend(monkeypatch, fail=lambda prompt: True)
    src, out, summary = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl", tmp_path / "s.json"
    assert main([*rerank_argv(src, out), "--summary-json", str(summary)]) == 1
    printed, err = capsys.readouterr()
    assert "error: rerank: every row failed (3 of 3)" in one_error_line(err) and "scripted failure" in err
    assert "failed: 3" in printed and "first accuracy:" in printed and "n/a" in printed
    assert "0.0000" not in printed
    rows = lines(out)
    assert [r["status"] for r in rows] == ["failed"] * 3 and all("correct" not in r for r in rows)
    public = strict_json(summary)
    assert public["rows_failed"] == 3 and public["rows_with_gold"] == 0 and public["first_accuracy"] is None
    # `report` on the same output: the same verdict (n/a, exit 1), a valid --json
    assert main(["report", str(out), "--json", str(tmp_path / "r.json")]) == 1
    printed, err = capsys.readouterr()
    assert "n/a" in printed and "every row failed (3 of 3)" in one_error_line(err)
    assert strict_json(tmp_path / "r.json")["majority_accuracy"] is None


def test_rerank_grades_only_the_rows_that_succeeded(tmp_path: Path, monkeypatch, capsys) -> None:
    install_scripted_backend(monkeypatch, fail=lambda prompt: prompt == "What is 4 + 6?")
    src, out, summary = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl", tmp_path / "s.json"
    assert main([*rerank_argv(src, out), "--summary-json", str(summary)]) == 0  # one row worked
    assert "with gold: 2, failed: 1" in capsys.readouterr().out
    public = strict_json(summary)
    # both graded rows had the right answer first; the failed row is not a third, wrong one
    assert (
        public["first_accuracy"] == 1.0 and public["pass_at_n_accuracy"] == 1.0 and public["rows_failed"] == 1
    )


def test_summarize_ignores_verdicts_of_failed_rows_of_older_outputs() -> None:
    right = dict.fromkeys(("first", "majority", "dupo", "pass_at_n"), True)
    rows = [
        {"id": "1", "status": "ok", "candidates": [], "correct": right},
        {"id": "2", "status": "failed", "candidates": [], "correct": dict.fromkeys(right, False)},
    ]
    summary = summarize(rows)
    assert summary["first_accuracy"] == 1.0 and summary["rows_with_gold"] == 1 and summary["rows_failed"] == 1


@pytest.mark.slow
def test_a_timed_out_request_is_a_failed_row_not_a_wrong_answer(
    tiny_model_path, tmp_path: Path, capsys
) -> None:
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"id": "t", "problem": "Tom has 3 apples and buys 4.", "answer": "7"}]
    )
    out = tmp_path / "out.jsonl"
    with TinyOpenAIServer(tiny_model_path, delay_s=2.0) as server:
        argv = ["rerank", "--input", str(src), "--output", str(out), "--backend", "openai", "--base-url"]
        argv += [server.base_url, "--model", "tiny", "--request-timeout", "0.3", "--http-retries", "0"]
        assert main([*argv, "--max-retries", "0", "--n", "1", "--no-progress"]) == 1
    (row,) = lines(out)
    assert row["status"] == "failed" and "TimeoutError" in row["error"] and "correct" not in row
    last = capsys.readouterr().err.splitlines()[-1]  # after the model server's own loading bar
    assert last.startswith("error: rerank: every row failed (1 of 1)") and "TimeoutError" in last


# -- 2: filter writes nothing when nothing is kept ----------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_filter_that_keeps_nothing_writes_nothing_and_exits_1(
    suffix: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    install_scripted_backend(monkeypatch, fail=lambda prompt: True)  # the server is down
    src = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(ROWS), src)
    else:
        write_jsonl(src, ROWS)
    out = tmp_path / f"kept{suffix}"
    assert main(filter_argv(src, out)) == 1
    printed, err = capsys.readouterr()
    assert "3 in, 0 kept" in printed and "3 failed" in printed
    assert "error: no row was kept; nothing written" in err.splitlines()[-1]
    assert not out.exists()
    # an output of an earlier run stays as it was
    out.write_bytes(b"earlier result")
    assert main([*filter_argv(src, out), "--overwrite"]) == 1
    assert out.read_bytes() == b"earlier result"


# -- 3: --resume checks the content of the rows already done -----------------------------------------


def no_id(row: dict) -> dict:
    """A prepared row whose id falls back to its position."""
    extra = {k: v for k, v in row["extra_info"].items() if k not in ("id", "index")}
    return {**row, "extra_info": extra}


def test_rerank_resume_refuses_other_rows_under_the_same_positions(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    install_scripted_backend(monkeypatch)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [no_id(r) for r in ROWS])
    assert main([*rerank_argv(src, out), "--limit", "2"]) == 0
    assert all(len(r["input_hash"]) == 16 for r in lines(out))
    before = out.read_bytes()
    write_jsonl(src, [no_id(arith_row(3, 3, "x")), *(no_id(r) for r in ROWS[1:])])  # other problem 0
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: rerank:") and "row 1 (id='0')" in line and "input changed" in line
    assert out.read_bytes() == before
    write_jsonl(src, [no_id(r) for r in ROWS])  # the original input resumes
    assert main([*rerank_argv(src, out), "--resume"]) == 0
    assert [r["index"] for r in lines(out)] == [0, 1, 2]


def test_filter_resume_refuses_a_changed_input(tmp_path: Path, monkeypatch, capsys) -> None:
    install_scripted_backend(monkeypatch)
    src, out = tmp_path / "in.jsonl", tmp_path / "kept.jsonl"
    write_jsonl(src, ROWS)
    assert main(filter_argv(src, out)) == 0
    changed = [ROWS[0], {**ROWS[1], "data_source": "other"}, ROWS[2]]  # same ids, other content
    write_jsonl(src, changed)
    capsys.readouterr()
    assert main([*filter_argv(src, out), "--resume"]) == 2
    assert "row 2 (id='c')" in one_error_line(capsys.readouterr().err)


# -- 4 and 5: report validates every row; nesting too deep is one line ---------------------------------

GOOD = {"first": True, "majority": True, "dupo": False, "pass_at_n": True}


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"id": 1, "candidates": "abc"}', "field 'candidates' must be a list"),
        ('{"id": 1, "candidates": [1, "x", null]}', "field 'candidates'[0] must be an object"),
        (
            '{"id": 1, "candidates": [{"dual_accuracy": NaN, "correct": true}]}',
            "'candidates'[0].dual_accuracy",
        ),
        (
            '{"id": 1, "candidates": [{"dual_accuracy": 0.5}, {"dual_accuracy": Infinity}]}',
            "'candidates'[1].dual",
        ),
        ('{"id": 1, "candidates": [{"dual_accuracy": 1e308}]}', "'candidates'[0].dual_accuracy"),
        ('{"id": 1, "candidates": [{"dual_accuracy": -5}]}', "'candidates'[0].dual_accuracy"),
        ('{"id": 1, "candidates": [{"dual_accuracy": "high"}]}', "'candidates'[0].dual_accuracy"),
        ('{"id": 1, "candidates": [{"dual_accuracy": true}]}', "'candidates'[0].dual_accuracy"),
        ('{"id": 1, "candidates": [{"dual_accuracy": 1, "correct": "yes"}]}', "'candidates'[0].correct"),
        ('{"id": 1, "candidates": [], "correct": "yes"}', "field 'correct' must be an object"),
        (
            json.dumps({"id": 1, "candidates": [], "correct": {**GOOD, "majority": "no"}}),
            "'correct.majority'",
        ),
        (json.dumps({"id": 1, "candidates": [], "correct": {**GOOD, "dupo": None}}), "'correct.dupo'"),
        (
            '{"id": 1, "candidates": [], "status": "ok", "generations": {"dual_samples": "9"}}',
            "generations.dual",
        ),
    ],
)
def test_report_names_the_row_and_field_of_a_bad_value(line: str, field: str, tmp_path: Path, capsys) -> None:
    good = json.dumps({"id": "g", "candidates": [{"dual_accuracy": 0.5, "correct": True}], "correct": GOOD})
    results = tmp_path / "r.jsonl"
    results.write_text(f"{good}\n{line}\n", encoding="utf-8")
    summary = tmp_path / "s.json"
    assert main(["report", str(results), "--json", str(summary)]) == 2
    message = one_error_line(capsys.readouterr().err)
    assert message.startswith("error: report:") and "row 2 (id 1)" in message and field in message
    assert not summary.exists()


@pytest.mark.parametrize("content", ["", "\n\n", "   \n"])
def test_report_of_an_empty_file_is_an_error_not_a_summary_of_nothing(content: str, tmp_path: Path, capsys) -> None:
    """It printed "rows: 0" and exited 0, as if a finished rerank run had been summarised."""
    results = tmp_path / "r.jsonl"
    results.write_text(content, encoding="utf-8")
    summary = tmp_path / "s.json"
    assert main(["report", str(results), "--json", str(summary)]) == 2
    captured = capsys.readouterr()
    message = one_error_line(captured.err)
    assert message.startswith("error: report:") and "holds no rows" in message and str(results) in message
    assert "rows:" not in captured.out and not summary.exists()


def test_report_of_valid_rows_writes_strict_json(tmp_path: Path, capsys) -> None:
    rows = [
        {
            "id": "1",
            "status": "ok",
            "candidates": [{"dual_accuracy": 1, "correct": True}, {"dual_accuracy": 0.25, "correct": False}],
            "correct": GOOD,
        },
    ]
    results = write_jsonl(tmp_path / "r.jsonl", rows)
    assert main(["report", str(results), "--json", str(tmp_path / "s.json")]) == 0
    summary = strict_json(tmp_path / "s.json")
    assert summary["dual_accuracy_right"] == 1.0 and summary["auroc_right_vs_wrong"] == 1.0


@pytest.mark.parametrize("depth", [100_000, 700])  # the JSON reader's limit; the row walker's
@pytest.mark.parametrize("command", ["report", "rerank"])
def test_rows_nested_too_deeply_are_one_line_naming_the_line(
    command: str, depth: int, tmp_path: Path, capsys
) -> None:
    src = tmp_path / "in.jsonl"
    deep = '{"id": 2, "candidates": [], "x": ' + "[" * depth + "]" * depth + "}"
    src.write_text(json.dumps(ROWS[0]) + "\n" + deep + "\n", encoding="utf-8")
    argv = ["report", str(src)] if command == "report" else rerank_argv(src, tmp_path / "out.jsonl")
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "in.jsonl:2: nested too deeply" in line


# -- 7: malformed fields are named; option errors are `error:` + exit 2 ---------------------------------


def with_dupo(row: dict, **fields) -> dict:
    extra = row["extra_info"]
    return {**row, "extra_info": {**extra, "dupo": {**extra["dupo"], **fields}}}


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"params": json.dumps({"x": 1})}, "field 'extra_info.dupo.params' must be an object"),
        ({"duals": "abc"}, "field 'extra_info.dupo.duals' must be a list of objects"),
        ({"duals": ["abc"]}, "field 'extra_info.dupo.duals'[0] must be an object"),
    ],
)
@pytest.mark.parametrize("command", ["rerank", "filter"])
def test_a_malformed_dupo_field_is_named_per_row(
    command: str, fields: dict, named: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    install_scripted_backend(monkeypatch)
    src = write_jsonl(tmp_path / "in.jsonl", [ROWS[0], with_dupo(ROWS[1], **fields)])
    if command == "rerank":
        out = tmp_path / "out.jsonl"
        assert main(rerank_argv(src, out)) == 0
        bad = lines(out)[1]
    else:
        assert main(filter_argv(src, tmp_path / "kept.jsonl")) == 0
        bad = lines(tmp_path / "kept.jsonl.work.jsonl")[1]
    assert bad["status"] == "invalid" and bad["error"].startswith(f"row 1 (id c): {named}, got str")


@pytest.mark.parametrize(
    "command, flags, message",
    [
        ("rerank", ["--backend", "hf"], "error: rerank: --backend hf needs --model"),
        ("rerank", ["--backend", "vllm"], "error: rerank: --backend vllm needs --model"),
        ("rerank", ["--backend", "openai"], "error: rerank: --backend openai needs --base-url"),
        ("filter", ["--backend", "hf"], "error: filter: --backend hf needs --model"),
        ("rerank", ["--backend", "hf", "--model", "m", "--resume", "--overwrite"], "exclude each other"),
        ("filter", ["--backend", "hf", "--model", "m", "--resume", "--overwrite"], "exclude each other"),
        (
            "filter-parquet",
            ["--backend", "hf", "--model", "m"],
            "error: filter: --output must have the input's",
        ),
    ],
)
def test_option_errors_are_error_lines_with_exit_2(
    command: str, flags: list, message: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    made = install_scripted_backend(monkeypatch)
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / ("out.parquet" if command == "filter-parquet" else "out.jsonl")
    out.write_bytes(b"earlier result")
    argv = [command.split("-")[0], "--input", str(src), "--output", str(out), "--no-progress", *flags]
    assert main(argv) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"earlier result" and made == []


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "1e9"])
@pytest.mark.parametrize("command", ["rerank", "filter"])
def test_dual_timeout_is_checked_at_the_door(command: str, value: str, tmp_path: Path, capsys) -> None:
    argv = [command, "--input", "x.jsonl", "--output", str(tmp_path / "o.jsonl"), "--backend", "hf"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--model", "m", "--dual-timeout-s", value])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --dual-timeout-s: must be a number in (0," in err
    assert "Traceback" not in err


def test_resume_of_an_output_with_a_too_deep_line_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    install_scripted_backend(monkeypatch)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    assert main([*rerank_argv(src, out), "--limit", "1"]) == 0
    with out.open("a", encoding="utf-8") as fh:
        fh.write("[" * 100_000 + "]" * 100_000 + "\n")
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--resume"]) == 2
    assert "out.jsonl:2: corrupt row" in one_error_line(capsys.readouterr().err)
