"""`benchmarks/bench_shared_duals.py`: the answer pools it scores have the share of distinct answers asked."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_shared_duals.py"
_spec = importlib.util.spec_from_file_location("bench_shared_duals", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@given(st.integers(0, 98), st.integers(1, 16), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_a_group_has_n_answers_with_the_asked_number_of_distinct_ones(total, n, distinct, seed):
    answers = bench.group_answers(random.Random(seed), total, n, distinct)
    counts = Counter(answers)
    assert len(answers) == n and str(total) in counts
    assert len(counts) == max(1, min(12, n, round(distinct * n)))
    assert all(a.lstrip("-").isdigit() for a in answers)
