"""What bounding the task's own code costs the scorer: `run_task_code` against plain `asyncio.to_thread`.

Scores a two-sum batch (`--problems` prompts x `--n` rollouts, both dual questions, greedy K = 1)
through the one scorer (`score_response`) with an instant in-process dual (it answers the true hidden
value), so what is timed is the scorer and the task code, not a model: once with every task-code call
bounded (`dupo_verl.task_calls.run_task_code`, the product) and once with the calls handed to
`asyncio.to_thread` unbounded (the baseline, what the scorer did before). Rounds alternate; the
verdicts must be the same both ways. Prints the median time ratio (bounded / unbounded) last.

    python benchmarks/bench_task_calls.py [--problems 64] [--n 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import nullcontext
from unittest import mock

from dupo_verl import scoring
from dupo_verl.scoring import Completion, DualOptions, score_response
from dupo_verl.tasks import get_task


async def _unbounded(task_name, hook, call, timeout_s):
    return await asyncio.to_thread(call)


def _batch(problems: int, n: int):
    task = get_task("two_sum", hide="both")
    rows = []
    for p in range(problems):
        a, b = 10 + p % 40, 20 + p % 37
        duals = task.decompose({"a": a, "b": b}).duals
        for r in range(n):
            rows.append((duals, str(a + b + (r % 3 == 0) * 10)))
    return task, rows


async def _score_all(task, rows, options: DualOptions) -> list[float]:
    async def one(i, duals, answer):
        async def dual(messages, *, n, **sampling):
            """An instant dual that answers the true hidden value (every check then runs)."""
            hidden = next(d.value for d in duals if d.masked_text in messages[-1]["content"])
            return [Completion(hidden, 1) for _ in range(n)]

        return (await score_response(task, duals, answer, dual, options, f"s{i}")).reward

    return await asyncio.gather(*(one(i, d, a) for i, (d, a) in enumerate(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    task, rows = _batch(args.problems, args.n)
    options = DualOptions(dual_temperature=0.0, dual_aggregate="min")
    times: dict[str, list[float]] = {"bounded": [], "unbounded": []}
    verdicts: dict[str, list[float]] = {}
    asyncio.run(_score_all(task, rows, options))  # warm-up
    for _ in range(args.rounds):
        for name in ("bounded", "unbounded"):
            patch = mock.patch.object(scoring, "run_task_code", _unbounded) if name == "unbounded" else nullcontext()
            with patch:
                start = time.perf_counter()
                verdicts[name] = asyncio.run(_score_all(task, rows, options))
                times[name].append(time.perf_counter() - start)
    assert verdicts["bounded"] == verdicts["unbounded"], "bounding task code changed a verdict"
    paid = sum(v > 0 for v in verdicts["bounded"])
    print(f"{len(rows)} rollouts, {paid} paid; rounds {args.rounds}")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.3f} s ({', '.join(f'{v:.3f}' for v in values)})")
    ratios = [b / u for b, u in zip(times["bounded"], times["unbounded"], strict=True)]
    print(f"task_code_bound_ratio={statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
