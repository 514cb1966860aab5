"""`benchmarks/bench_agent_loop.py`: the overhead arithmetic and the per-engine arguments.

The vLLM run itself needs `.venv-e2e` and minutes of CPU; what it reports is computed by
`summarize`, tested here on step records of known values.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_agent_loop.py"
_spec = importlib.util.spec_from_file_location("bench_agent_loop", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def step(
    config: str, round_: int, wall: float, primal: float, dual: float = 0.0, warmup: bool = False
) -> dict:
    return {
        "config": config,
        "k": 0 if config == bench.PLAIN else int(config[-1]),
        "round": round_,
        "warmup": warmup,
        "wall_s": wall,
        "primal_tokens": primal,
        "dual_tokens": dual,
        "dual_requests": dual / 10,
    }


def test_summary_pairs_each_step_with_the_plain_step_of_its_round() -> None:
    steps = [
        # warm-up steps are not timed: their absurd values must not show anywhere
        step(bench.PLAIN, 0, 100.0, 1.0, warmup=True),
        step("dupo_agent K=1", 0, 0.1, 1.0, 1.0, warmup=True),
        # round 1 on a quiet machine, round 2 twice as slow: the ratios are the same
        step(bench.PLAIN, 1, 2.0, 100),
        step("dupo_agent K=1", 1, 3.0, 100, 100),  # time x1.5 for tokens x2: overhead 0.75
        step("dupo_agent K=2", 1, 7.0, 100, 200),  # time x3.5 for tokens x3: overhead 1.167
        step(bench.PLAIN, 2, 4.0, 100),
        step("dupo_agent K=1", 2, 6.0, 100, 100),
        step("dupo_agent K=2", 2, 14.0, 100, 200),
    ]
    rows = {row["config"]: row for row in bench.summarize(steps)}
    assert list(rows) == [bench.PLAIN, "dupo_agent K=1", "dupo_agent K=2"]

    plain, k1, k2 = rows[bench.PLAIN], rows["dupo_agent K=1"], rows["dupo_agent K=2"]
    assert plain["steps"] == k1["steps"] == 2
    assert (plain["time_ratio"], plain["token_ratio"], plain["overhead"]) == (1.0, 1.0, 1.0)
    assert plain["wall_s"] == 3.0 and plain["best_wall_s"] == 2.0
    # Paired across rounds (3.0 / 4.0) the time ratio would not be 1.5 in both rounds.
    assert k1["time_ratio"] == pytest.approx(1.5)
    assert k1["token_ratio"] == pytest.approx(2.0)
    assert k1["overhead"] == pytest.approx(0.75) and k1["meets_target"]
    assert k2["overhead"] == pytest.approx(3.5 / 3.0) and not k2["meets_target"]
    assert k2["dual_tokens"] == 200 and k2["dual_requests"] == 20


def test_token_ratio_counts_the_dupo_run_primal_tokens() -> None:
    """Primal lengths differ between runs (sampling): DuPO's own primal tokens enter the ratio."""
    steps = [step(bench.PLAIN, 1, 1.0, 100), step("dupo_agent K=1", 1, 2.2, 80, 120)]
    k1 = bench.summarize(steps)[1]
    assert k1["token_ratio"] == pytest.approx(2.0)
    assert k1["overhead"] == pytest.approx(1.1) and k1["meets_target"]


def test_engine_defaults_and_dual_samples() -> None:
    vllm = bench.parse_args(["--engine", "vllm"])
    assert (vllm.rows, vllm.n, vllm.response_length, vllm.dual_samples) == (64, 4, 64, [1, 2, 4])
    assert vllm.dual_max_tokens == 32 and vllm.json is None
    tiny = bench.parse_args([])
    assert (tiny.engine, tiny.rows, tiny.dual_samples, tiny.dual_max_tokens) == ("tiny", 12, [1, 2, 4], 48)
    assert tiny.anchored and not bench.parse_args(["--no-anchored"]).anchored
    assert bench.parse_args(["--engine", "vllm", "--dual-samples", "4,1", "--rows", "8"]).dual_samples == [
        4,
        1,
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--dual-samples", "2,4"],  # the anchored judge is timed at K=1
        ["--engine", "vllm", "--dual-samples", "1,1"],
        ["--engine", "vllm", "--dual-samples", "0"],
        ["--dual-samples", "two"],
    ],
)
def test_bad_dual_samples_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_likelihood_ratio_is_the_last_line(capsys) -> None:
    steps = [
        step(bench.PLAIN, 1, 2.0, 100),
        {**step(bench.PLAIN, 1, 2.2, 100), "config": bench.LIKELIHOOD, "k": 0},
    ]
    bench.print_likelihood_ratio(bench.summarize(steps))
    assert capsys.readouterr().out.splitlines()[-1] == "likelihood_step_ratio=1.100"
