"""What sharing identical dual questions in flight saves: dual calls and time per GRPO-like batch.

The rollouts of a group that reach the same answer ask the dual the same question. This scores a
two-sum batch (`--problems` prompts x `--n` rollouts, both dual questions per rollout: hide B and
hide A) through the one scorer (`score_response`) on a real backend (the random-weight tiny model
of `dupo_verl.demo.tiny_lm` behind the micro-batcher, the offline path), twice per mode on the same
answers: with identical questions in flight sharing one call (the default) and with sharing turned
off (the baseline). The answers of a group are drawn so that a share `--distinct` of them is
distinct, as measured on the two-sum demo (44.9 % of a step's (prompt, answer) pairs were distinct
in the seed-0 `dupo_ensemble` run); the saving is at most 1 - distinct share. Modes: likelihood
(one prefill per question) and greedy sampled duals (`dual_temperature=0`, K = 1). Verdicts must
be the same both ways; the time ratio is printed last per mode (wall and process CPU time).

    python benchmarks/bench_shared_duals.py [--problems 32] [--n 8] [--distinct 0.45]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from dupo_verl.demo.tiny_lm import build_tiny_lm
from dupo_verl.generation import MicroBatcher
from dupo_verl.generation.hf import HFBackend
from dupo_verl.scoring import DualOptions, score_response
from dupo_verl.tasks import get_task


def group_answers(rng: random.Random, total: int, n: int, distinct: float) -> list[str]:
    """`n` answers around `total` with about `distinct * n` different values (at least one)."""
    values = [str(total)] + [str(total + d) for d in (10, -10, 1, -1, 2, -2, 11, 9, 20, -20, 3)]
    k = max(1, min(len(values), n, round(distinct * n)))
    chosen = values[:k]
    answers = chosen + [rng.choice(chosen) for _ in range(n - k)]
    rng.shuffle(answers)
    return answers


def run(batch, options: DualOptions, backend: HFBackend, shared: bool) -> tuple[list, int, float, float]:
    task = get_task("two_sum", hide="both")

    async def go():
        async with MicroBatcher(backend, seed=0) as generate:
            if not shared:
                generate.shared_scope = None  # the baseline: every rollout asks for itself
            results = await asyncio.gather(*(
                score_response(task, task.decompose(example).duals, answer, generate, options, f"r{i}")
                for i, (example, answer) in enumerate(batch)))
            return results, generate.stats.requests

    start, cpu = time.perf_counter(), time.process_time()
    results, calls = asyncio.run(go())
    return results, calls, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32, help="prompts per batch")
    parser.add_argument("--n", type=int, default=8, help="rollouts per prompt")
    parser.add_argument("--distinct", type=float, default=0.45, help="share of a group's answers that differ")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per setting (interleaved)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    batch = []
    for _ in range(args.problems):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        batch += [({"a": a, "b": b}, answer) for answer in group_answers(rng, a + b, args.n, args.distinct)]
    distinct = len(set(batch_key for batch_key in ((e["a"], e["b"], ans) for e, ans in batch))) / len(batch)
    corpus = [f"{a}+{b}={a + b}" for a in range(50) for b in range(50)]
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_lm(Path(tmp) / "lm", corpus=corpus, vocab_size=320, hidden_size=128, num_layers=2,
                              num_heads=4, max_position_embeddings=256, seed=0, split_digits=True)
        backend = HFBackend(str(model), dtype="float32")
        print(f"{len(batch)} rollouts, 2 dual questions each, {distinct:.1%} distinct (prompt, answer) pairs")
        modes = {"likelihood": DualOptions(dual_mode="likelihood"),
                 "greedy K=1": DualOptions(dual_samples=1, dual_temperature=0.0, dual_max_tokens=4)}
        for name, options in modes.items():
            run(batch[: args.n], options, backend, shared=True)  # warm-up
            times = {True: [], False: []}
            for _ in range(args.rounds):
                out = {}
                for shared in (False, True):
                    results, calls, wall, cpu = run(batch, options, backend, shared)
                    times[shared].append((wall, cpu))
                    out[shared] = (results, calls)
                same = all(x.reward == y.reward for x, y in zip(out[True][0], out[False][0], strict=True))
                print(f"{name}: calls shared {out[True][1]} / unshared {out[False][1]} "
                      f"({out[True][1] / out[False][1]:.2f}x); verdicts identical: {same}")
            wall = min(t[0] for t in times[True]) / min(t[0] for t in times[False])
            cpu = min(t[1] for t in times[True]) / min(t[1] for t in times[False])
            print(f"{name}: shared / unshared time, best of {args.rounds}: wall {wall:.2f}x, process CPU {cpu:.2f}x")


if __name__ == "__main__":
    main()
