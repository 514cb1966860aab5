"""The long-job shell: filtered parquet keeps the schema, output is resumable and exact."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from offline_fixtures import ScriptedBackend, arith_row

from dupo_verl.generation import MicroBatcher
from dupo_verl.offline.filter import FilterSettings, filter_report, filter_row, jobs_from_rows, write_filtered
from dupo_verl.offline.jsonl_writer import ResumableJsonlWriter
from dupo_verl.offline.pipeline import JobOptions, run_rows
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.offline.rerank import RerankInput, RerankSettings, build_jobs, rerank_row
from dupo_verl.offline.runner import run_in_order
from dupo_verl.scoring import DualOptions


def ans(*values):
    return [f"ANSWER: {v}" if v is not None else "hmm" for v in values]


POOLS = {
    "What is 2 + 3?": ans(5, 7, 5, None),  # both questions kept
    "What is 1 + 1?": ans(3, 3, 3, 3),  # nothing recovered: problem dropped
    "What is 4 + 6?": ans(10, 11, 12, 10),  # both kept
    "What is 7 + 1?": ans(9, 8, 8, 9),  # both kept
}
ROWS = [arith_row(2, 3, "a"), arith_row(1, 1, "b"), arith_row(4, 6, "c"), arith_row(7, 1, "d")]


def test_filter_pipeline_writes_same_schema_and_report(tmp_path):
    source = tmp_path / "prepared.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), source)
    work, out = tmp_path / "work.jsonl", tmp_path / "filtered.parquet"
    settings = FilterSettings(sampling=PrimalSampling(n=4, max_tokens=8), dual=DualOptions(dual_samples=1))
    backend = ScriptedBackend(POOLS)
    result = run_rows(
        jobs_from_rows(pq.read_table(source).to_pylist()),
        key=lambda job: (job.index, job.id),
        worker=lambda job, generate: filter_row(job, generate, settings),
        make_backend=lambda: backend,
        options=JobOptions(output=work, progress=False),
    )
    assert write_filtered(source, out, result.rows, limit=None) == 3
    original, filtered = pq.read_table(source), pq.read_table(out)
    assert filtered.schema == original.schema
    kept = filtered.to_pylist()
    assert [r["extra_info"]["id"] for r in kept] == ["a", "c", "d"]
    assert [len(r["extra_info"]["dupo"]["duals"]) for r in kept] == [2, 2, 2]
    assert kept[0]["prompt"] == ROWS[0]["prompt"] and kept[0]["reward_model"] == ROWS[0]["reward_model"]
    report = filter_report(result.rows, settings)
    assert report["problems"]["kept"] == 3 and report["problems"]["dropped_no_question_left"] == 1
    assert report["questions"]["kept"] == 6 and report["questions"]["dropped_unanswerable"] == 2
    assert report["settings"]["candidates"] == 4
    assert result.stats.requests == len(backend.requests)
    assert len(work.read_text().splitlines()) == 4


def test_filter_cuts_only_the_dropped_question(tmp_path):
    source = tmp_path / "prepared.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:1]))
    out = tmp_path / "filtered.jsonl"
    backend = ScriptedBackend(POOLS, dual=lambda prompt, k: "Va = 2" if "Va" in prompt else None)
    settings = FilterSettings(sampling=PrimalSampling(n=4, max_tokens=8), dual=DualOptions(dual_samples=1))
    result = run_rows(
        jobs_from_rows(ROWS[:1]),
        key=lambda j: (j.index, j.id),
        worker=lambda job, generate: filter_row(job, generate, settings),
        make_backend=lambda: backend,
        options=JobOptions(output=tmp_path / "w.jsonl", progress=False),
    )
    write_filtered(source, out, result.rows, limit=None)
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["variable"] for d in row["extra_info"]["dupo"]["duals"]] == ["Vb"]  # Va was not unique


class Crash(Exception):
    pass


def _rerank_run(path, crash_after=None, resume=False):
    settings = RerankSettings(sampling=PrimalSampling(n=4, max_tokens=8), dual=DualOptions(dual_samples=2))
    jobs = build_jobs(ROWS, RerankInput())
    done = []

    async def worker(job, generate):
        if crash_after is not None and len(done) >= crash_after:
            raise Crash(f"injected after {crash_after} rows")
        row = await rerank_row(job, generate, settings)
        done.append(row)
        return row

    backend = ScriptedBackend(
        POOLS, dual=lambda prompt, k: ["Va = 2", "Va = 9"][k] if "Va +" in prompt else None
    )
    result = run_rows(
        jobs,
        key=lambda j: (j.index, j.id),
        worker=worker,
        make_backend=lambda: backend,
        options=JobOptions(output=path, resume=resume, concurrency=1, progress=False),
    )
    return result, backend


def test_resume_after_failure_equals_uninterrupted_run(tmp_path):
    full = tmp_path / "full.jsonl"
    _rerank_run(full)
    broken = tmp_path / "broken.jsonl"
    with pytest.raises(Crash):
        _rerank_run(broken, crash_after=2)
    assert len(broken.read_text().splitlines()) == 2
    with broken.open("a") as fh:  # a half-written row, as a kill mid-write leaves it
        fh.write('{"index": 2, "id": "c", "chosen_')
    result, backend = _rerank_run(broken, resume=True)
    assert result.resumed_rows == 2
    assert broken.read_bytes() == full.read_bytes()
    assert {r.messages[-1]["content"] for r in backend.requests if r.n == 4} == {
        "What is 4 + 6?",
        "What is 7 + 1?",
    }
    # a finished output resumes without generating anything
    result, backend = _rerank_run(broken, resume=True)
    assert result.stats is None and backend.requests == [] and len(result.rows) == 4


def test_resume_refuses_output_of_another_input(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps({"index": 0, "id": "zzz"}) + "\n")
    with pytest.raises(ValueError, match="another input"):
        _rerank_run(path, resume=True)
    with pytest.raises(FileExistsError, match="--resume"):
        _rerank_run(path)


def test_writer_recovers_complete_rows_only(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"index": 0}\n{"index": 1}\n{"ind')
    writer = ResumableJsonlWriter(path, resume=True)
    assert writer.open() == [{"index": 0}, {"index": 1}]
    assert writer.dropped_partial_line
    writer.write({"index": 2, "text": "naïve ∑"})
    writer.close()
    assert path.read_text(encoding="utf-8") == '{"index": 0}\n{"index": 1}\n{"index": 2, "text": "naïve ∑"}\n'
    path.write_text('{"index": 0}\nnot json\n')
    with pytest.raises(ValueError, match="rows.jsonl:2"):
        ResumableJsonlWriter(path, resume=True).open()
    writer = ResumableJsonlWriter(path, overwrite=True)
    assert writer.open() == []
    writer.close()
    assert path.read_text() == '{"index": 0}\nnot json\n'  # nothing new written: the old file stays
    writer = ResumableJsonlWriter(path, overwrite=True)
    writer.open()
    writer.write({"index": 0})
    writer.close()
    assert path.read_text() == '{"index": 0}\n' and [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]


def test_run_in_order_hands_results_over_in_input_order():
    async def worker(delay_and_value):
        delay, value = delay_and_value
        await asyncio.sleep(delay)
        return {"value": value}

    seen = []
    items = [(0.05, 0), (0.0, 1), (0.03, 2), (0.0, 3), (0.01, 4)]
    count = asyncio.run(run_in_order(items, worker, seen.append, concurrency=3))
    assert count == 5 and [r["value"] for r in seen] == [0, 1, 2, 3, 4]


def test_micro_batcher_groups_concurrent_calls():
    backend = ScriptedBackend(POOLS)

    async def go():
        async with MicroBatcher(backend, seed=0) as generate:
            calls = [
                generate(msgs, n=4, temperature=1.0, top_p=1.0, max_tokens=8, session_id=f"s{i}")
                for i, msgs in enumerate([r["prompt"] for r in ROWS] * 3)
            ]
            results = await asyncio.gather(*calls)
            return results, generate.stats

    results, stats = asyncio.run(go())
    assert [r[0].text for r in results[:4]] == ["ANSWER: 5", "ANSWER: 3", "ANSWER: 10", "ANSWER: 9"]
    assert stats.requests == 12 and stats.batches == 1 and stats.samples == 48
    # seeds come from the session id: different sessions, different seeds; stable across runs
    seeds = [r.seed for r in backend.requests]
    assert len(set(seeds)) == 12
    backend2 = ScriptedBackend(POOLS)

    async def again():
        async with MicroBatcher(backend2, seed=0) as generate:
            await generate(ROWS[0]["prompt"], n=1, temperature=1.0, top_p=1.0, max_tokens=8, session_id="s0")

    asyncio.run(again())
    assert backend2.requests[0].seed == seeds[0]


def test_micro_batcher_respects_batch_cap_and_reports_failures():
    backend = ScriptedBackend(POOLS, fail=lambda prompt: prompt == "What is 1 + 1?")

    async def go():
        async with MicroBatcher(backend, max_batch_size=3) as generate:
            calls = [
                generate(r["prompt"], n=1, temperature=1.0, top_p=1.0, max_tokens=8, session_id=str(i))
                for i, r in enumerate(ROWS * 2)
            ]
            return await asyncio.gather(*calls, return_exceptions=True), generate.stats

    results, stats = asyncio.run(go())
    assert max(stats.batch_sizes) <= 3 and sum(stats.batch_sizes) == 8
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [1, 5] and stats.failed_requests == 2
    assert "scripted failure" in str(results[1])
