"""Probe 5 for `dupo-verl rerank`: a row without any dual verdict is failed (not a DuPO result) and
redone on --resume, no output ever lands on the input or the settings record, --overwrite keeps the
old results until the new run writes a row, unusable gold values leave a row unlabelled (counted),
and the remaining user errors are one line that names the file, line or option."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from offline_fixtures import (
    THREE_POOLS,
    arith_row,
    install_backend,
    lines,
    one_error_line,
    three_rows,
    write_jsonl,
)

from dupo_verl.cli import main
from dupo_verl.offline.rerank import RerankInput, build_jobs, needs_redo

POOLS, ROWS = THREE_POOLS, three_rows()


def is_dual(prompt: str) -> bool:
    return "The answer is" in prompt


def rerank_argv(src: Path, out: Path, *extra: str) -> list[str]:
    return ["rerank", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted",
            "--n", "2", "--dual-samples", "1", "--no-progress", *extra]


# -- 1: a dual that never answered is no DuPO result -------------------------------------------------


def test_rows_whose_duals_all_failed_are_failed_and_redone_on_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS, fail=is_dual)
    src, out, summary = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl", tmp_path / "s.json"
    assert main([*rerank_argv(src, out), "--summary-json", str(summary)]) == 1
    printed, err = capsys.readouterr()
    assert "every row failed (3 of 3)" in one_error_line(err) and "no dual question was answered" in err
    rows = lines(out)
    assert [r["status"] for r in rows] == ["failed"] * 3
    assert all("correct" not in r and r["chosen_answer"] is None for r in rows)
    assert [c["answer"] for c in rows[0]["candidates"]] == ["5", "7"]  # the samples are kept, not graded
    assert "dupo accuracy:" in printed and "1.0000" not in printed and "no dual verdict:      3 rows" in printed
    public = json.loads(summary.read_text())
    assert public["rows_failed"] == 3 and public["rows_without_dual_verdict"] == 3
    assert public["dupo_accuracy"] is None
    # a working model: --resume redoes every such row
    install_backend(monkeypatch, POOLS)
    assert main([*rerank_argv(src, out), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "redid 3 failed or invalid rows" in printed and "dupo accuracy:        1.0000" in printed
    assert [r["status"] for r in lines(out)] == ["ok"] * 3


def test_partial_dual_failures_keep_the_row_and_are_counted(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS, fail=lambda p: is_dual(p) and "Vb" in p and "is 7." in p)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    assert main(rerank_argv(src, out)) == 0
    printed = capsys.readouterr().out
    assert [r["status"] for r in lines(out)] == ["ok"] * 3
    assert "failed dual requests: 1 in 1 graded rows" in printed


def test_resume_redoes_an_older_ok_row_without_any_dual_verdict(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    assert main(rerank_argv(src, out)) == 0
    rows = lines(out)
    old = {**rows[1], "failed_dual_questions": 4, "candidates": [{**c, "dual_accuracy": None} for c in rows[1]["candidates"]]}
    assert needs_redo(old) and not needs_redo(rows[0])
    write_jsonl(out, [rows[0], old, rows[2]])
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--resume"]) == 0
    assert "resumed 2 rows; redid 1" in capsys.readouterr().out
    assert lines(out)[1]["candidates"] == rows[1]["candidates"]


# -- 3: never over the input or the settings record ---------------------------------------------------


def test_the_settings_record_is_never_the_input_or_the_summary(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_backend(monkeypatch, POOLS)
    out = tmp_path / "r.jsonl"
    src = tmp_path / "r.jsonl.settings.json"  # a valid .json input, where the settings record goes
    src.write_text(json.dumps(ROWS), encoding="utf-8")
    before = src.read_bytes()
    assert main(rerank_argv(src, out)) == 2
    assert "the settings record" in one_error_line(capsys.readouterr().err)
    assert src.read_bytes() == before and not out.exists() and made == []
    good = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert main([*rerank_argv(good, out), "--summary-json", str(src)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--summary-json" in line and "the settings record" in line and src.read_bytes() == before


# -- 5: --overwrite keeps the old results until the new run writes a row -------------------------------


def test_overwrite_keeps_the_old_output_when_the_model_fails_to_load(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    settings = tmp_path / "out.jsonl.settings.json"
    assert main(rerank_argv(src, out)) == 0
    results, record = out.read_bytes(), settings.read_bytes()

    import dupo_verl.generation.options as backend_options

    def broken(args):
        raise OSError("model weights unreadable")

    monkeypatch.setattr(backend_options, "build_backend", broken)
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--seed", "3", "--overwrite"]) == 2
    assert "model weights unreadable" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == results and settings.read_bytes() == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "out.jsonl.settings.json"]
    # a missing local model is named as such, before anything is opened
    argv = [a if a != "scripted" else str(tmp_path / "no" / "model") for a in rerank_argv(src, out)]
    assert main([*argv, "--overwrite"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no such local folder" in line and str(tmp_path / "no" / "model") in line
    assert out.read_bytes() == results
    # a run that works replaces both
    install_backend(monkeypatch, POOLS)
    assert main([*rerank_argv(src, out), "--seed", "3", "--overwrite"]) == 0
    assert json.loads(settings.read_text())["settings"]["seed"] == 3 and len(lines(out)) == 3


# -- 6: gold values prepare refuses leave the row unlabelled, counted ---------------------------------


def test_unusable_gold_values_leave_rows_unlabelled_and_counted(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    rows = [arith_row(2, 3, "a"), arith_row(4, 6, "c"), arith_row(7, 1, "d")]
    for row, bad in zip(rows[1:], (["10"], {"x": 8}), strict=True):
        row["reward_model"]["ground_truth"] = bad
    src, out, summary = write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl", tmp_path / "s.json"
    assert main([*rerank_argv(src, out), "--summary-json", str(summary)]) == 0
    printed = capsys.readouterr().out
    a, c, d = lines(out)
    assert a["gold"] == "5" and "correct" in a
    for row in (c, d):
        assert "gold" not in row and "correct" not in row and "reward_model.ground_truth" in row["gold_unusable"]
    assert "with gold: 1," in printed and "gold unusable:        2 rows" in printed and "id c:" in printed
    public = json.loads(summary.read_text())
    assert public["rows_gold_unusable"] == 2 and public["candidates_right"] + public["candidates_wrong"] == 2


def test_raw_gold_nan_list_object_and_bool_are_no_answer() -> None:
    problem = "Tom has 3 apples and buys 4."
    values = [math.nan, ["7"], {"x": 7}, True, "nan", 7, " 7 ", None, ""]
    rows = [{"id": str(i), "problem": problem, "answer": v} for i, v in enumerate(values)]
    jobs = build_jobs(rows, RerankInput())
    assert [j.gold for j in jobs] == [None, None, None, None, None, "7", "7", None, None]
    assert all("field 'answer'" in j.gold_problem for j in jobs[:5])
    assert [j.gold_problem for j in jobs[5:]] == [None] * 4


# -- 11 / 12: duplicate ids, output format -------------------------------------------------------------


def test_duplicate_ids_among_many_rows_are_named() -> None:
    rows = [{"id": str(i), "problem": "Tom has 3 apples and buys 4."} for i in range(20000)]
    rows += [{"id": "17", "problem": "x"}, {"id": "5", "problem": "y"}]
    try:
        build_jobs(rows, RerankInput())
    except ValueError as exc:
        assert "repeated: ['17', '5']" in str(exc)
    else:
        raise AssertionError("duplicate ids accepted")


def test_output_must_be_jsonl(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_backend(monkeypatch, POOLS)
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    for name in ("x.parquet", "x.json", "x"):
        assert main(rerank_argv(src, tmp_path / name)) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"--output {tmp_path / name}" in line and ".jsonl" in line
    assert made == [] and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


# -- 14: messages ----------------------------------------------------------------------------------


def test_resume_with_a_smaller_limit_mentions_limit(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    assert main(rerank_argv(src, out)) == 0
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--resume", "--limit", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "holds 3 rows" in line and "reads only 1 input rows" in line and "--limit" in line


def test_resume_of_an_output_with_a_bad_byte_names_file_and_line(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    assert main(rerank_argv(src, out)) == 0
    with out.open("ab") as fh:
        fh.write(b'{"index": 3, "id": "\xff"}\n')
    capsys.readouterr()
    assert main([*rerank_argv(src, out), "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{out}:4: not UTF-8" in line and "codec" not in line


def test_translation_without_task_params_points_to_the_flag(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "raw.jsonl", [{"text": "Hello there, 3 friends."}])
    out = tmp_path / "out.jsonl"
    argv = ["rerank", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted"]
    assert main([*argv, "--task", "translation"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--task-params" in line and "src_lang, tgt_lang" in line and not out.exists()


def test_filter_and_rerank_read_the_json_files_prepare_reads(tmp_path: Path) -> None:
    """`{"data": [...]}` was refused by the offline tools although `prepare` took it."""
    from dupo_verl.offline.io import read_rows

    rows = three_rows()
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"data": rows}), encoding="utf-8")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(rows), encoding="utf-8")
    assert read_rows(wrapped) == read_rows(plain) == [json.loads(json.dumps(r)) for r in rows]
    (tmp_path / "two.json").write_text(json.dumps({"a": rows, "b": rows}), encoding="utf-8")
    with pytest.raises(ValueError, match="exactly one list of rows"):
        read_rows(tmp_path / "two.json")
