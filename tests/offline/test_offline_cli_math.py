"""filter, rerank and report through the CLI on the shared MATH data with the tiny model on CPU.

The tiny model has random weights, so its numbers mean nothing; what is checked is the plumbing:
every row accounted for, counts that add up, schemas kept, a resumed run equal to a whole one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from openai_server import TinyOpenAIServer

from dupo_verl.cli import main

pytestmark = pytest.mark.slow

SMALL = ["--max-tokens", "16", "--dual-max-tokens", "8", "--no-progress"]


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory):
    """Four MATH-500 problems through `dupo-verl prepare math` (the real training data path)."""
    folder = tmp_path_factory.mktemp("prepared")
    raw = folder / "math500.jsonl"
    with (shared_data / "math" / "math500_test.jsonl").open(encoding="utf-8") as fh:
        raw.write_text("".join(next(fh) for _ in range(6)), encoding="utf-8")
    out = folder / "math500.parquet"
    assert (
        main(["prepare", "math", "--input", str(raw), "--output", str(out), "--max-duals-per-problem", "2"])
        == 0
    )
    return out


def test_filter_on_math500(prepared, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "filtered.parquet"
    args = [
        "filter",
        "--input",
        str(prepared),
        "--output",
        str(out),
        "--backend",
        "hf",
        "--model",
        str(tiny_model_path),
        "--candidates",
        "3",
        "--dual-samples",
        "2",
        *SMALL,
    ]
    code = main(args)
    printed, err = capsys.readouterr()
    report = json.loads((tmp_path / "filtered.parquet.report.json").read_text())
    source = pq.read_table(prepared)
    duals_in = sum(len(r["extra_info"]["dupo"]["duals"]) for r in source.to_pylist())
    p, q, g = report["problems"], report["questions"], report["generations"]
    assert p["in"] == source.num_rows and q["in"] == duals_in
    assert p["kept"] + p["dropped_no_question_left"] + p["dropped_failed"] + p["dropped_invalid"] == p["in"]
    assert q["kept"] + q["dropped_unanswerable"] + q["dropped_not_unique"] + q["dropped_failed"] == q["in"]
    assert g["primal_samples"] == 3 * source.num_rows and g["failed_requests"] == 0
    assert g["dual_samples"] == 2 * g["dual_requests"]
    work = lines(tmp_path / "filtered.parquet.work.jsonl")
    assert [w["index"] for w in work] == list(range(source.num_rows))
    assert g["dual_requests"] == sum(
        len(w["answers"]) * len(w["questions"]) - w["leaked_pairs"] for w in work
    )
    if p["kept"]:
        filtered = pq.read_table(out)
        assert code == 0 and filtered.schema == source.schema and filtered.num_rows == p["kept"]
    else:  # the random tiny model may keep nothing: then nothing is written, as `prepare` does
        assert code == 1 and not out.exists() and "no row was kept; nothing written" in err
    assert f"problems: {p['in']} in" in printed
    # a second run must not silently clobber the work file; --resume reuses it without generating
    assert main(args) == 2  # one line, no traceback
    assert "exists; pass --resume to continue it or --overwrite" in capsys.readouterr().err
    assert main([*args, "--resume"]) == code
    assert (
        json.loads((tmp_path / "filtered.parquet.report.json").read_text())["resumed_rows"] == source.num_rows
    )


def test_rerank_and_report_on_aime(shared_data, tiny_model_path, tmp_path, capsys):
    out = tmp_path / "aime.jsonl"
    summary_json = tmp_path / "summary.json"
    args = [
        "rerank",
        "--input",
        str(shared_data / "math" / "aime2024.jsonl"),
        "--limit",
        "3",
        "--output",
        str(out),
        "--backend",
        "hf",
        "--model",
        str(tiny_model_path),
        "--n",
        "3",
        "--dual-samples",
        "2",
        "--max-duals",
        "2",
        "--summary-json",
        str(summary_json),
        *SMALL,
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = lines(out)
    gold = [
        json.loads(line) for line in (shared_data / "math" / "aime2024.jsonl").read_text().splitlines()[:3]
    ]
    assert [r["id"] for r in rows] == [g["id"] for g in gold]
    for row, source in zip(rows, gold, strict=True):
        assert row["status"] == "ok" and row["gold"] == source["answer"]
        assert len(row["candidates"]) == 3 and set(row["correct"]) == {
            "first",
            "majority",
            "dupo",
            "pass_at_n",
        }
        answers = [c["answer"] for c in row["candidates"]]
        assert row["chosen_answer"] is None or row["chosen_answer"] in answers
        distinct = len({a for a in answers if a is not None})
        # shared dual work: one request per distinct answer and dual question (minus leaks)
        assert row["generations"]["dual_requests"] <= distinct * row["num_duals"]
        assert row["num_duals"] <= 2
    for method in ("first", "majority", "dupo", "pass_at_n"):
        assert f"{method} accuracy:" in printed
    summary = json.loads(summary_json.read_text())
    assert summary["rows"] == 3 and summary["rows_with_gold"] == 3

    plot = tmp_path / "report.png"
    assert main(["report", str(out), "--plot", str(plot), "--json", str(tmp_path / "report.json")]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dupo_accuracy"] == sum(r["correct"]["dupo"] for r in rows) / 3


def test_rerank_over_openai_server_with_given_candidates(shared_data, tiny_model_path, tmp_path):
    problems = tmp_path / "gsm8k.jsonl"
    with (shared_data / "math" / "gsm8k_test.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(next(fh)) for _ in range(2)]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text(
        "".join(
            json.dumps(
                {"id": r["id"], "responses": [f"\\boxed{{{r['answer']}}}", "\\boxed{7}", f"so {r['answer']}"]}
            )
            + "\n"
            for r in rows
        )
    )
    out = tmp_path / "out.jsonl"
    with TinyOpenAIServer(tiny_model_path) as server:
        assert (
            main(
                [
                    "rerank",
                    "--input",
                    str(problems),
                    "--output",
                    str(out),
                    "--candidates",
                    str(candidates),
                    "--backend",
                    "openai",
                    "--base-url",
                    server.base_url,
                    "--dual-samples",
                    "2",
                    "--max-duals",
                    "2",
                    *SMALL,
                ]
            )
            == 0
        )
        requests = server.requests
    results = lines(out)
    for row, source in zip(results, rows, strict=True):
        assert [c["answer"] for c in row["candidates"]] == [source["answer"], "7", source["answer"]]
        assert [c["correct"] for c in row["candidates"]] == [True, False, True]
        assert row["correct"]["pass_at_n"] and row["correct"]["first"] and row["correct"]["majority"]
        assert row["generations"]["primal_samples"] == 0
    # two distinct answers per problem share their dual work: no primal requests at all
    assert requests == sum(r["generations"]["dual_requests"] for r in results) <= 2 * 2 * 2


def test_killed_rerank_resumes_to_the_same_output(shared_data, tiny_model_path, tmp_path):
    problems = tmp_path / "gsm8k.jsonl"
    with (shared_data / "math" / "gsm8k_test.jsonl").open(encoding="utf-8") as fh:
        problems.write_text("".join(next(fh) for _ in range(6)), encoding="utf-8")
    common = [
        "rerank",
        "--input",
        str(problems),
        "--backend",
        "hf",
        "--model",
        str(tiny_model_path),
        "--n",
        "3",
        "--dual-samples",
        "2",
        "--max-duals",
        "2",
        "--concurrency",
        "1",
        "--seed",
        "5",
        *SMALL,
    ]
    whole = tmp_path / "whole.jsonl"
    assert main([*common, "--output", str(whole)]) == 0

    killed = tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dupo_verl", *common, "--output", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if killed.exists() and killed.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed mid-way"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = killed.read_bytes().count(b"\n")
    assert 2 <= partial < 6
    assert main([*common, "--output", str(killed), "--resume"]) == 0
    assert killed.read_bytes() == whole.read_bytes()
