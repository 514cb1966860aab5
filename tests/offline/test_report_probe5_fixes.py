"""Probe 5 for `dupo-verl report`: duplicated rows are refused (naming id and both lines), a folder is
called a folder, failed and invalid rows are shown apart, rows without any dual verdict are failed,
verify timeouts are printed, and a reader that stops early (`| head -1`) is no error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from offline_fixtures import one_error_line, write_jsonl

from dupo_verl.cli import main
from dupo_verl.offline.report import format_summary, summarize

RIGHT = dict.fromkeys(("first", "majority", "dupo", "pass_at_n"), True)


def ok_row(ident: str, **extra) -> dict:
    return {"index": 0, "id": ident, "status": "ok", "num_duals": 2, "failed_dual_questions": 0,
            "candidates": [{"answer": "5", "dual_accuracy": 1.0, "correct": True}], "correct": RIGHT,
            "generations": {"primal_samples": 1, "dual_requests": 2, "dual_samples": 2, "verify_timeouts": 0},
            **extra}


def test_duplicated_rows_are_refused_naming_the_id_and_both_lines(tmp_path: Path, capsys) -> None:
    rows = [ok_row("a"), ok_row("b")]
    dup = write_jsonl(tmp_path / "dup.jsonl", rows + rows)  # `cat full.jsonl full.jsonl`
    assert main(["report", str(dup)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "id 'a' appears twice" in line and f"{dup}:1 and {dup}:3" in line
    assert main(["report", str(write_jsonl(tmp_path / "ok.jsonl", rows))]) == 0
    assert "rows: 2 " in capsys.readouterr().out


def test_a_folder_is_called_a_folder(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is a directory" in line and "not found" not in line


def test_failed_invalid_and_dual_less_rows_are_shown_apart() -> None:
    old_no_verdict = ok_row("c", failed_dual_questions=4, candidates=[{"answer": "5", "dual_accuracy": None,
                                                                         "correct": True}])
    rows = [
        ok_row("a"),
        {"index": 1, "id": "b", "status": "invalid", "error": "row 1: bad", "candidates": []},
        old_no_verdict,  # an older output's "ok" row whose choice was the vote: not a DuPO result
        {"index": 3, "id": "d", "status": "failed", "error": "x", "candidates": []},
        ok_row("e", failed_dual_questions=1, correct={**RIGHT, "dupo": False}),
    ]
    summary = summarize(rows)
    assert (summary["rows_failed"], summary["rows_invalid"], summary["rows_with_gold"]) == (2, 1, 2)
    assert summary["dupo_accuracy"] == 0.5 and summary["rows_without_dual_verdict"] == 1
    text = format_summary(summary)
    assert "failed: 2, invalid: 1" in text and "no dual verdict:      1 rows" in text
    assert "failed dual requests: 1 in 1 graded rows" in text


def test_verify_timeouts_are_printed_when_there_are_any() -> None:
    row = ok_row("a")
    assert "verify timeouts" not in format_summary(summarize([row]))
    row["generations"]["verify_timeouts"] = 3
    assert "verify timeouts: 3 answer checks timed out" in format_summary(summarize([row]))


def test_a_reader_that_stops_early_is_no_error(tmp_path: Path) -> None:
    results = write_jsonl(tmp_path / "r.jsonl", [ok_row("a"), ok_row("b")])
    out = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from dupo_verl.cli import main; sys.exit(main())", "report", str(results), "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head -0`: nobody reads what report prints
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err
    assert json.loads(out.read_text())["rows"] == 2  # the files are still written
