"""`benchmarks/bench_task_calls.py`: it runs, finds the same verdicts bounded and unbounded, and prints its ratio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_task_calls.py"


def test_the_benchmark_prints_its_ratio_last():
    out = subprocess.run([sys.executable, str(BENCH), "--problems", "3", "--n", "2", "--rounds", "1"],
                         capture_output=True, text=True, timeout=300, check=True).stdout.strip().splitlines()
    assert out[0].startswith("6 rollouts, 6 paid")
    assert re.fullmatch(r"task_code_bound_ratio=\d+\.\d{3}", out[-1])
