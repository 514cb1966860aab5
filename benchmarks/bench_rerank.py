"""What answer-sharing saves in `dupo-verl rerank`: generations per problem and problems per second.

Runs the real rerank path (task decomposition, micro-batcher, `judge_answer`, the tiny random-weight
model from `dupo_verl.demo.tiny_lm` doing every generation) on GSM8K problems from the shared data,
each setting twice on the same candidate pools: with candidates that share a final answer sharing
its dual work (the default) and judging every candidate separately (the baseline).

Settings: (1) pools sampled from the tiny model at temperature 1 - a random model almost never
repeats an answer, so this is the floor; (2) given pools (`--candidates` path) with a controlled
number of distinct answers (the gold answer and nearby wrong ones), as a trained model's pools
have: the saving is 1 - distinct answers / candidates. Times are wall clock and process CPU time
(the CPU figure is steadier on a shared machine).

    python benchmarks/bench_rerank.py [--problems 6] [--n 8] [--dual-samples 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from dupo_verl.demo.tiny_lm import build_tiny_lm
from dupo_verl.generation import MicroBatcher
from dupo_verl.generation.hf import HFBackend
from dupo_verl.offline.primal import PrimalSampling
from dupo_verl.offline.rerank import RerankInput, RerankSettings, build_jobs, rerank_row
from dupo_verl.offline.runner import run_in_order
from dupo_verl.scoring import DualOptions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math" / "gsm8k_test.jsonl"


def run_mode(backend, jobs, settings, concurrency):
    rows = []

    async def go():
        async with MicroBatcher(backend, seed=0) as generate:
            await run_in_order(
                jobs, lambda job: rerank_row(job, generate, settings), rows.append, concurrency=concurrency
            )
            return generate.stats

    start, cpu_start = time.perf_counter(), time.process_time()
    stats = asyncio.run(go())
    return rows, stats, time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=6)
    parser.add_argument("--n", type=int, default=8, help="candidates per problem")
    parser.add_argument("--dual-samples", type=int, default=2)
    parser.add_argument("--max-duals", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--dual-max-tokens", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--distinct", default="1,2,4", help="distinct answers per given pool")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with DATA.open(encoding="utf-8") as fh:
        problems = [json.loads(next(fh)) for _ in range(args.problems)]
    with tempfile.TemporaryDirectory() as tmp:
        backend = HFBackend(str(build_tiny_lm(Path(tmp) / "tiny")))
        spec = RerankInput(max_duals=args.max_duals)
        jobs = build_jobs(problems, spec)
        duals = sum(len(j.duals) for j in jobs) / len(jobs)
        print(
            f"{len(jobs)} GSM8K problems, n={args.n} candidates, K={args.dual_samples} dual samples, "
            f"{duals:.2f} dual questions per problem, tiny random model on CPU"
        )
        settings = {
            share: RerankSettings(
                sampling=PrimalSampling(n=args.n, temperature=args.temperature, max_tokens=args.max_tokens),
                dual=DualOptions(dual_samples=args.dual_samples, dual_max_tokens=args.dual_max_tokens),
                share_answers=share,
            )
            for share in (False, True)
        }
        scenarios = [(f"pools sampled from the tiny model (temperature {args.temperature})", jobs)]
        for distinct in [int(d) for d in args.distinct.split(",")]:
            pools = {
                str(p["id"]): [
                    f"The answer is \\boxed{{{int(p['answer']) + i % distinct}}}." for i in range(args.n)
                ]
                for p in problems
            }
            scenarios.append(
                (f"given pools with {distinct} distinct answer(s)", build_jobs(problems, spec, pools))
            )
        for label, scenario_jobs in scenarios:
            # baseline first, so any warm-up favours the baseline, not sharing
            base_rows, base, base_s, base_cpu = run_mode(
                backend, scenario_jobs, settings[False], args.concurrency
            )
            rows, shared, shared_s, shared_cpu = run_mode(
                backend, scenario_jobs, settings[True], args.concurrency
            )
            report(label, base_rows, base, base_s, base_cpu, rows, shared, shared_s, shared_cpu)


def report(label, base_rows, base, base_s, base_cpu, rows, shared, shared_s, shared_cpu) -> None:
    pools = [[c["answer"] for c in r["candidates"]] for r in rows]
    if pools != [[c["answer"] for c in r["candidates"]] for r in base_rows]:
        raise SystemExit("the two modes saw different candidate pools; the comparison would be unfair")
    per = len(rows)
    answered = sum(sum(a is not None for a in pool) for pool in pools) / per
    distinct = sum(len({a for a in pool if a is not None}) for pool in pools) / per
    dual_base = sum(r["generations"]["dual_requests"] for r in base_rows) / per
    dual_shared = sum(r["generations"]["dual_requests"] for r in rows) / per
    print(f"\n{label}: {answered:.2f} answered candidates, {distinct:.2f} distinct answers per problem")
    for name, stats, dual, wall, cpu in (
        ("without sharing", base, dual_base, base_s, base_cpu),
        ("with sharing   ", shared, dual_shared, shared_s, shared_cpu),
    ):
        print(
            f"  {name}: {stats.requests / per:6.2f} requests ({dual:.2f} dual), {stats.samples / per:6.2f} samples "
            f"per problem; {per / wall:.3f} problems/s wall, {per / cpu:.3f} problems/s CPU"
        )
    saved = 1 - dual_shared / dual_base if dual_base else 0.0
    expected = 1 - distinct / answered if answered else 0.0
    print(
        f"  dual_requests_saved={saved:.3f} (1 - distinct/answered = {expected:.3f}) "
        f"samples_saved={1 - shared.samples / base.samples:.3f} "
        f"speedup_wall={base_s / shared_s:.2f}x speedup_cpu={base_cpu / shared_cpu:.2f}x"
    )


if __name__ == "__main__":
    main()
