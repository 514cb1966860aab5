"""Does a label-free judge hold over a long run? The two-sum demo's targets, from its own curves.

A judge that decays shows it as a rise then a fall, or as a seed ending below where it started,
and only over long (continued) runs. For each method, from its held-out validation curves (joined
over `--continue-from` stages) at each stage end (`checkpoints`, e.g. 24, 48, 72 steps):

- the smoothed measure (mean of the last 3 validations up to that step) and the final one (the
  validation at that step), as gains over the run's own step-0 validation, means over seeds, and
  a label-free method's gain as a share of the oracle's at the same step on the same seeds;
- seeds that end (smoothed, at the last checkpoint) below their warm start;
- the largest fall of the mean-over-seeds smoothed curve below its own running peak, in points;
- a label-free method's smoothed gain minus the oracle's on the same seed, mean and standard error
  over seeds: whether a shortfall is larger than the run-to-run spread of these few seeds.

The targets (issue 15): share >= `SHARE_TARGET` at every checkpoint, no seed below its warm start,
no fall larger than `FALL_TARGET` points.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from dupo_verl.demo.results import RunRecord, last3

SHARE_TARGET = 0.80
FALL_TARGET = 3.0  # points of held-out accuracy
GOLD_METHODS = frozenset({"oracle"})


@dataclass
class MethodTargets:
    """One method's numbers at each checkpoint (points of held-out accuracy; shares as fractions)."""

    method: str
    seeds: int
    smoothed_gain: dict[int, float] = field(default_factory=dict)
    final_gain: dict[int, float] = field(default_factory=dict)
    smoothed_share: dict[int, float | None] = field(default_factory=dict)
    final_share: dict[int, float | None] = field(default_factory=dict)
    seeds_below_warm: list[int] = field(default_factory=list)
    largest_fall: float | None = None
    # per checkpoint: {"mean", "se", "seeds"} of (smoothed gain - the oracle's) over paired seeds
    smoothed_vs_oracle: dict[int, dict[str, float | int | None]] = field(default_factory=dict)

    def verdicts(self, checkpoints: Sequence[int]) -> dict[str, bool | None]:
        shares = [self.smoothed_share.get(c) for c in checkpoints]
        return {
            "share": None if any(s is None for s in shares) else all(s >= SHARE_TARGET for s in shares),
            "no_seed_below_warm": not self.seeds_below_warm,
            "no_fall": None if self.largest_fall is None else self.largest_fall <= FALL_TARGET,
        }


def _upto(curve: Sequence[Sequence[float]], step: int) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in curve if s <= step]


def _at(curve: Sequence[Sequence[float]], step: int) -> float | None:
    found = [float(v) for s, v in curve if s == step]
    return found[-1] if found else None


def smoothed_curve(curve: Sequence[Sequence[float]]) -> list[tuple[int, float]]:
    """(step, mean of the last 3 validations up to that step) at every validation step."""
    return [(int(step), last3(_upto(curve, step))) for step, _ in curve]


def largest_fall(curve: Sequence[tuple[int, float]]) -> float:
    """The largest drop of `curve` below its running peak (0 for a curve that never falls)."""
    peak, fall = float("-inf"), 0.0
    for _, value in curve:
        peak = max(peak, value)
        fall = max(fall, peak - value)
    return fall


def _mean_at_common_steps(curves: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    steps = sorted(set.intersection(*(set(s for s, _ in c) for c in curves))) if curves else []
    lookup = [dict(c) for c in curves]
    return [(s, statistics.fmean(d[s] for d in lookup)) for s in steps]


def _smoothed_gain_at(run: RunRecord, step: int) -> float | None:
    """A run's smoothed gain (points) at `step`, or None when the run stopped before it."""
    if run.curve[-1][0] < step:
        return None
    return 100 * (last3(_upto(run.curve, step)) - run.curve[0][1])


def _mean_gains(runs: Sequence[RunRecord], checkpoints: Sequence[int]) -> tuple[dict[int, float], dict[int, float]]:
    """Mean over `runs` of the smoothed and the final gain (points) at each checkpoint every run reached."""
    smoothed_gain: dict[int, float] = {}
    final_gain: dict[int, float] = {}
    for step in checkpoints:
        smoothed = [g for r in runs if (g := _smoothed_gain_at(r, step)) is not None]  # a shorter run: none
        finals = [v - r.curve[0][1] for r in runs if (v := _at(r.curve, step)) is not None]
        if smoothed and len(smoothed) == len(runs):
            smoothed_gain[step] = statistics.fmean(smoothed)
        if finals and len(finals) == len(runs):
            final_gain[step] = 100 * statistics.fmean(finals)
    return smoothed_gain, final_gain


def paired_difference(runs: Sequence[RunRecord], oracle_runs: dict[int, RunRecord],
                      step: int) -> dict[str, float | int | None] | None:
    """Mean and standard error over seeds of (smoothed gain - the oracle's on the same seed) at `step`.

    Pairing by seed removes the warm start's share of the spread (both runs start from it); the
    standard error is None for a single pair. None when no seed has both runs at `step`.
    """
    diffs = []
    for run in runs:
        oracle = oracle_runs.get(run.seed)
        own = _smoothed_gain_at(run, step)
        base = None if oracle is None else _smoothed_gain_at(oracle, step)
        if own is not None and base is not None:
            diffs.append(own - base)
    if not diffs:
        return None
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
    return {"mean": statistics.fmean(diffs), "se": se, "seeds": len(diffs)}


def method_targets(records: Sequence[RunRecord], checkpoints: Sequence[int]) -> list[MethodTargets]:
    """Every trained method's numbers (finished runs with a validation curve only)."""
    by_method: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.method != "warm_start" and r.status == "ok" and r.curve:
            by_method.setdefault(r.method, []).append(r)
    out = []
    for method, runs in by_method.items():
        row = MethodTargets(method, len(runs))
        row.smoothed_gain, row.final_gain = _mean_gains(runs, checkpoints)
        last = checkpoints[-1] if checkpoints else max(r.curve[-1][0] for r in runs)
        row.seeds_below_warm = sorted(r.seed for r in runs
                                      if _upto(r.curve, last) and last3(_upto(r.curve, last)) < r.curve[0][1])
        mean_curve = _mean_at_common_steps([smoothed_curve(r.curve) for r in runs])
        row.largest_fall = 100 * largest_fall(mean_curve) if mean_curve else None
        out.append(row)
    oracle_runs = {r.seed: r for m, runs in by_method.items() if m in GOLD_METHODS for r in runs}
    for row in out:
        # the oracle's gain on the same seeds (same warm starts): a method with fewer seeds is not
        # compared with an oracle mean over warm starts it never had
        seeds = [r.seed for r in by_method[row.method]]
        matched = [oracle_runs[s] for s in seeds if s in oracle_runs]
        smoothed_base, final_base = _mean_gains(matched, checkpoints) if len(matched) == len(seeds) else ({}, {})
        for gains, shares, base in ((row.smoothed_gain, row.smoothed_share, smoothed_base),
                                    (row.final_gain, row.final_share, final_base)):
            for step, gain in gains.items():
                shares[step] = gain / base[step] if base.get(step) is not None and base[step] > 0 else None
        if row.method not in GOLD_METHODS:
            for step in checkpoints:
                paired = paired_difference(by_method[row.method], oracle_runs, step)
                if paired is not None:
                    row.smoothed_vs_oracle[step] = paired
    return out


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def targets_markdown(records: Sequence[RunRecord], checkpoints: Sequence[int]) -> str:
    """The targets table: gains (smoothed / final) and share of the oracle's gain per checkpoint,
    seeds ending below their warm start, the largest fall from the peak, and whether each target is met."""
    rows = method_targets(records, checkpoints)
    head = " | ".join(f"@{c} smoothed (final) | % of oracle" for c in checkpoints)
    lines = [f"| method | seeds | {head} | seeds below warm start | largest fall from peak | "
             f">= {100 * SHARE_TARGET:.0f} % at every step | none below | fall <= {FALL_TARGET:g} |",
             "|---|---|" + "---|---|" * len(checkpoints) + "---|---|---|---|---|"]
    for row in rows:
        cells = []
        for c in checkpoints:
            cells.append(f"{_pts(row.smoothed_gain.get(c))} ({_pts(row.final_gain.get(c))})")
            cells.append("-" if row.method in GOLD_METHODS else
                         f"{_share(row.smoothed_share.get(c))} ({_share(row.final_share.get(c))})")
        verdict = row.verdicts(checkpoints)
        share = "-" if row.method in GOLD_METHODS else _yes(verdict["share"])
        below = ", ".join(f"seed {s}" for s in row.seeds_below_warm) or "none"
        fall = "-" if row.largest_fall is None else f"{row.largest_fall:.1f}"
        lines.append(f"| {row.method} | {row.seeds} | " + " | ".join(cells) + f" | {below} | {fall} | {share} | "
                     f"{_yes(verdict['no_seed_below_warm'])} | {_yes(verdict['no_fall'])} |")
    return "\n".join(lines)


def _paired_cell(paired: dict[str, float | int | None] | None) -> str:
    if paired is None:
        return "-"
    se = "" if paired["se"] is None else f" ± {paired['se']:.1f}"
    return f"{paired['mean']:+.1f}{se} ({paired['seeds']})"


def paired_markdown(records: Sequence[RunRecord], checkpoints: Sequence[int]) -> str:
    """Each label-free method's smoothed gain minus the oracle's on the same seeds, per checkpoint:
    mean ± standard error (number of paired seeds)."""
    rows = [r for r in method_targets(records, checkpoints) if r.method not in GOLD_METHODS]
    if not rows:
        return "(no label-free method)"
    lines = ["| method | " + " | ".join(f"@{c}" for c in checkpoints) + " |",
             "|---|" + "---|" * len(checkpoints)]
    for row in rows:
        lines.append(f"| {row.method} | " + " | ".join(_paired_cell(row.smoothed_vs_oracle.get(c))
                                                      for c in checkpoints) + " |")
    return "\n".join(lines)
