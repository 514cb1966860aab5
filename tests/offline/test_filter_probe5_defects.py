"""Probe 5 of `dupo-verl filter`: a question whose dual calls failed is no verdict (its row is failed,
counted as such and redone by --resume), existing files are never replaced without --overwrite
(a resumed run rewrites only its own output and report), and every format the help names is read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from offline_fixtures import THREE_POOLS, install_backend, lines, three_rows, write_jsonl

from dupo_verl.cli import main
from dupo_verl.offline.filter import filter_report
from dupo_verl.offline.io import ROW_FORMATS, read_rows

POOLS, ROWS = THREE_POOLS, three_rows()


def is_dual(prompt: str) -> bool:
    return prompt not in POOLS


def argv(src: Path, out: Path, *extra: str) -> list[str]:
    return ["filter", "--input", str(src), "--output", str(out), "--backend", "hf", "--model", "scripted",
            "--candidates", "2", "--max-retries", "0", "--no-progress", *extra]


def one_error_line(err: str) -> str:
    found = [line for line in err.splitlines() if line.strip()]
    assert len(found) == 1 and "Traceback" not in err, err
    return found[0]


# -- defect 2: failed dual calls are failed rows, never "dropped (no question left)" ------------------


def test_failed_dual_calls_fail_the_row_and_resume_redoes_it(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_backend(monkeypatch, POOLS, fail=is_dual)  # the dual calls time out
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl"
    assert main(argv(src, out)) == 1
    printed, err = capsys.readouterr()
    assert "3 in, 0 kept, 0 dropped (no question left), 3 failed" in printed
    assert "6 in, 0 kept, 0 unanswerable, 0 not unique, 6 failed" in printed
    assert "2 of 2 dual questions got no verdict" in err and "--resume" in err
    work = lines(tmp_path / "kept.jsonl.work.jsonl")
    assert [r["status"] for r in work] == ["failed"] * 3 and all(r["kept"] == [] for r in work)
    report = json.loads((tmp_path / "kept.jsonl.report.json").read_text())
    assert report["problems"]["dropped_failed"] == 3 and report["problems"]["dropped_no_question_left"] == 0
    assert [r["id"] for r in report["failed_rows"]] == ["a", "c", "d"]
    assert not out.exists()

    assert len(made[0].dual_requests()) == 3 * 2 * 2  # every pair was asked, and failed
    made = install_backend(monkeypatch, POOLS)  # the server is back: --resume redoes every failed row
    assert main([*argv(src, out), "--resume"]) == 0
    assert "3 in, 3 kept, 0 dropped (no question left), 0 failed" in capsys.readouterr().out
    assert len(made[0].dual_requests()) == 3 * 2 * 2  # every (answer, question) pair asked again
    assert [r["status"] for r in lines(tmp_path / "kept.jsonl.work.jsonl")] == ["ok"] * 3
    assert [r["extra_info"]["id"] for r in lines(out)] == ["a", "c", "d"]
    assert json.loads((tmp_path / "kept.jsonl.report.json").read_text())["retried_rows"] == 3


def test_a_partly_judged_row_is_failed_not_cut(tmp_path: Path, monkeypatch, capsys) -> None:
    # row "a": question Vb fails for answer 7 only; Va was judged (kept). Rows c and d are fine.
    install_backend(monkeypatch, POOLS, fail=lambda p: "Vb" in p and "is 7." in p)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl"
    assert main(argv(src, out)) == 0
    printed, err = capsys.readouterr()
    assert "3 in, 2 kept, 0 dropped (no question left), 1 failed" in printed
    assert "4 kept, 0 unanswerable, 0 not unique, 2 failed" in printed  # row a's kept Va is not kept
    assert "row 0 (id a): 1 of 2 dual questions got no verdict" in err
    assert [r["extra_info"]["id"] for r in lines(out)] == ["c", "d"]  # a is not written with Va alone
    record = lines(tmp_path / "kept.jsonl.work.jsonl")[0]
    assert record["status"] == "failed" and [q["rule"] for q in record["questions"]] == ["kept", "failed"]
    install_backend(monkeypatch, POOLS)
    assert main([*argv(src, out), "--resume"]) == 0
    kept = lines(out)
    assert [r["extra_info"]["id"] for r in kept] == ["a", "c", "d"]
    assert len(kept[0]["extra_info"]["dupo"]["duals"]) == 2


def test_report_counts_questions_of_failed_rows_as_failed() -> None:
    records = [
        {"index": 0, "id": "x", "status": "failed", "error": "e", "kept": [],
         "questions": [{"rule": "kept"}, {"rule": "failed"}, {"rule": "unanswerable"}]},
        {"index": 1, "id": "y", "status": "ok", "kept": [], "questions": [{"rule": "unanswerable"}]},
    ]
    report = filter_report(records)
    assert report["problems"]["dropped_failed"] == 1 and report["problems"]["dropped_no_question_left"] == 1
    assert report["questions"] == {
        "in": 4, "kept": 0, "dropped_unanswerable": 1, "dropped_not_unique": 0, "dropped_failed": 3,
    }


# -- defect 4: no existing file is replaced without --overwrite ---------------------------------------


@pytest.mark.parametrize("work_flag", [True, False])
def test_an_existing_output_is_refused_before_any_work(
    work_flag: bool, tmp_path: Path, monkeypatch, capsys
) -> None:
    made = install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl"
    out.write_text("precious\n")
    extra = ["--work", str(tmp_path / "w2.jsonl")] if work_flag else []
    assert main(argv(src, out, *extra)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--output {out} exists; pass --overwrite" in line
    assert out.read_text() == "precious\n" and not made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "kept.jsonl"]  # nothing started
    assert main(argv(src, out, *extra, "--overwrite")) == 0
    assert [r["extra_info"]["id"] for r in lines(out)] == ["a", "c", "d"]


def test_an_existing_report_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_backend(monkeypatch, POOLS)
    src, out, report = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl", tmp_path / "notes.json"
    report.write_text('{"mine": true}\n')
    assert main(argv(src, out, "--report", str(report))) == 2
    assert f"--report {report} exists; pass --overwrite" in one_error_line(capsys.readouterr().err)
    assert report.read_text() == '{"mine": true}\n' and not made and not out.exists()


def test_resume_rewrites_its_own_files_and_refuses_anyone_elses(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl"
    report = tmp_path / "kept.jsonl.report.json"
    assert main(argv(src, out)) == 0
    assert main([*argv(src, out), "--resume"]) == 0  # its own output and report: rewritten
    assert json.loads(report.read_text())["resumed_rows"] == 3
    capsys.readouterr()

    own = out.read_bytes()
    out.write_text("precious\n")  # someone else's file now stands where the output was
    assert main([*argv(src, out), "--resume"]) == 2
    assert f"--output {out} exists and is not this job's output" in one_error_line(capsys.readouterr().err)
    assert out.read_text() == "precious\n"

    out.write_bytes(own)
    report.write_text('{"mine": true}\n')
    assert main([*argv(src, out), "--resume"]) == 2
    assert f"--report {report} exists and is not this job's report" in one_error_line(capsys.readouterr().err)
    assert report.read_text() == '{"mine": true}\n'


def test_resume_without_a_work_file_still_refuses_a_foreign_output(tmp_path: Path, monkeypatch, capsys) -> None:
    made = install_backend(monkeypatch, POOLS)
    src, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "kept.jsonl"
    out.write_text("precious\n")
    assert main([*argv(src, out), "--resume"]) == 2
    assert "is not this job's output" in one_error_line(capsys.readouterr().err)
    assert out.read_text() == "precious\n" and not made


# -- defect 14: the help's formats are the formats read -----------------------------------------------


def test_every_format_in_the_help_is_filtered_in_that_format(tmp_path: Path, monkeypatch, capsys) -> None:
    install_backend(monkeypatch, POOLS)
    with pytest.raises(SystemExit):
        main(["filter", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(ROW_FORMATS) in help_text
    for suffix in ROW_FORMATS:
        src, out = tmp_path / f"in{suffix}", tmp_path / f"kept{suffix}"
        if suffix == ".parquet":
            pq.write_table(pa.Table.from_pylist(ROWS), src)
        elif suffix == ".json":
            src.write_text(json.dumps(ROWS), encoding="utf-8")
        else:
            write_jsonl(src, ROWS)
        assert main(argv(src, out)) == 0, capsys.readouterr().err
        assert [r["extra_info"]["id"] for r in read_rows(out)] == ["a", "c", "d"]


def test_an_unknown_input_format_names_the_formats(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    assert main(argv(src, tmp_path / "kept.txt")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--input must be a prepared .jsonl, .json, .parquet file" in line
