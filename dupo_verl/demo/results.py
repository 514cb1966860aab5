"""`results.json`, the before/after table and the accuracy-vs-steps plot of the two-sum demo.

One `RunRecord` per (method, seed). `warm_start` is the no-RL control: its accuracy is the
warm-started model's, flat over steps. Curves come from verl's greedy validation of the held-out
primal prompts (`val-core/<source>/...` metrics logged every `test_freq` steps). The plot always
shows the warm start (every run's starting point) and a y-axis wide enough to read a gain against
it; `closing_lines` says in one line per method what training gained, the demo's last words.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dupo_verl.demo.methods import METHODS

# The reward each method trains on, for the closing lines (anything else: the label-free DuPO reward).
_REWARD = {"oracle": "gold labels", "shuffled": "a coin, no labels"}
Y_PAD = 5.0  # points of context above and below the data
Y_MIN_SPAN = 20.0  # points: a y-axis never narrower, so a 1-point wobble does not look like a trend
_COLORS = {"warm_start": "#777777", "dupo": "#1f77b4", "oracle": "#2ca02c", "shuffled": "#d62728",
           "dupo_frozen": "#9467bd", "dupo_alternate": "#ff7f0e", "dupo_ensemble": "#17becf",
           "dupo_likelihood": "#8c564b", "dupo_anchored": "#e377c2", "dupo_ensemble_anchored": "#bcbd22",
           "dupo_frozen_ensemble": "#111111"}  # not a grey: grey is the warm start


@dataclass
class RunRecord:
    """Measurements of one method on one seed."""

    method: str
    seed: int
    primal_before: float
    dual_before: float
    primal_after: float | None = None
    dual_after: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out primal accuracy)
    dual_curve: list[tuple[int, float]] = field(default_factory=list)
    agreement: float | None = None  # reward (>= 0.5) == truth, over all training rollouts
    reward_rate: float | None = None
    wall_s: float | None = None
    status: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def final_primal(self) -> float | None:
        """The accuracy after training (the warm start's own for the no-RL control)."""
        return self.primal_before if self.method == "warm_start" else self.primal_after


def val_curve(steps: Mapping[int, Mapping[str, float]], source: str) -> list[tuple[int, float]]:
    """(step, accuracy) of data source `source` from verl's validation metrics.

    verl names them `val-core/<source>/<key>/mean@1` (or `val-aux/...`). `dupo_gold_acc` (the
    `dupo` reward manager scores validation rows too, and reports gold accuracy there) comes first,
    then `acc`, then `reward`/`score` (equal to accuracy for a 0/1 gold reward).
    """
    curve = []
    for step in sorted(steps):
        metrics = steps[step]
        value = None
        for key in ("dupo_gold_acc", "acc", "reward", "score"):
            for prefix in ("val-core", "val-aux"):
                name = f"{prefix}/{source}/{key}/mean@1"
                if name in metrics and math.isfinite(metrics[name]):
                    value = metrics[name]
                    break
            if value is not None:
                break
        if value is not None:
            curve.append((step, value))
    return curve


def last3(curve: Sequence[Sequence[float]]) -> float | None:
    """Mean of the last 3 validations (fewer when there are fewer); None without any: the smoothed
    measure, since one greedy evaluation of a tiny model moves by a point or two on its own."""
    values = [v for _, v in curve[-3:]]
    return statistics.fmean(values) if values else None


def metric_curve(steps: Mapping[int, Mapping[str, float]], key: str) -> list[tuple[int, float]]:
    """(step, value) of one logged training metric (e.g. `dupo/judge_disagreement/mean`), finite values only."""
    return [(step, float(m[key])) for step, m in sorted(steps.items())
            if key in m and isinstance(m[key], int | float) and math.isfinite(m[key])]


def _window_of(step: int, width: int) -> str:
    low = (max(step, 1) - 1) // width * width + 1
    return f"{low}-{low + width - 1}"


def format_judge_windows(records: Sequence[RunRecord], width: int = 8) -> str:
    """Per method and window of `width` GRPO steps, means over seeds: the training reward's
    precision and recall against truth (`reward_vs_truth_per_window`) and the live/frozen judges'
    disagreement (`judge_disagreement_per_step`, anchored judges only; "-" where not logged)."""
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in records:
        if r.method == "warm_start" or r.status != "ok":
            continue
        rows = table.setdefault(r.method, {})
        for window, rates in (r.detail.get("reward_vs_truth_per_window") or {}).items():
            cell = rows.setdefault(window, {})
            for key in ("precision", "recall"):
                value = rates.get(key)
                if isinstance(value, int | float) and math.isfinite(value):
                    cell.setdefault(key, []).append(float(value))
        per_window: dict[str, list[float]] = {}
        for step, value in r.detail.get("judge_disagreement_per_step") or []:
            per_window.setdefault(_window_of(int(step), width), []).append(float(value))
        for window, values in per_window.items():
            rows.setdefault(window, {}).setdefault("disagreement", []).append(statistics.fmean(values))
    lines = ["| method | GRPO steps | reward precision | reward recall | judge disagreement |", "|---|---|---|---|---|"]
    for method, rows in table.items():
        for window in sorted(rows, key=lambda w: int(w.split("-")[0])):
            cells = [rows[window].get(k) for k in ("precision", "recall", "disagreement")]
            text = ["-" if not v else f"{statistics.fmean(v):.3f}" for v in cells]
            lines.append(f"| {method} | {window} | " + " | ".join(text) + " |")
    return "\n".join(lines)


# verl's per-step timings a run's cost is read from (the reward loop, a frozen judge's calls
# included, runs inside `gen`)
STEP_TIMINGS = {"step": "timing_s/step", "gen": "timing_s/gen"}


def _run_median(record: RunRecord, part: str) -> float | None:
    values = [v for _, v in (record.detail.get("seconds_per_step") or {}).get(part, [])]
    return statistics.median(values) if values else None


def format_step_costs(records: Sequence[RunRecord]) -> str:
    """Per method, what one GRPO step costs in verl's real `main_ppo`: the median seconds per step
    and in generation (rollout plus every judge's calls), each run's median (robust to the warm-up
    step) averaged over seeds, and the step's ratio to the oracle's (a plain step) in this output.
    Runs made at different times can share the machine with different loads: read ratios of a
    few tenths with that in mind."""
    per_method: dict[str, dict[str, list[float]]] = {}
    for r in records:
        if r.method == "warm_start" or r.status != "ok":
            continue
        for part in STEP_TIMINGS:
            value = _run_median(r, part)
            if value is not None:
                per_method.setdefault(r.method, {}).setdefault(part, []).append(value)
    plain = statistics.fmean(per_method["oracle"]["step"]) if per_method.get("oracle", {}).get("step") else None
    lines = ["| method | runs | seconds per step | of which generation | step vs oracle |", "|---|---|---|---|---|"]
    for method, parts in per_method.items():
        step = statistics.fmean(parts["step"]) if parts.get("step") else None
        gen = statistics.fmean(parts["gen"]) if parts.get("gen") else None
        ratio = "-" if step is None or not plain else f"{step / plain:.2f}x"
        lines.append(f"| {method} | {len(parts.get('step', []))} | {'-' if step is None else f'{step:.1f}'} | "
                     f"{'-' if gen is None else f'{gen:.1f}'} | {ratio} |")
    return "\n".join(lines)


def _stats(values: Sequence[float | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None and math.isfinite(v)]
    out: dict[str, Any] = {"per_seed": list(values), "mean": statistics.fmean(present) if present else None}
    if len(present) > 1:
        out["stdev"] = statistics.stdev(present)
    return out


def finished_stats(runs: Sequence[RunRecord], values: Sequence[float | None]) -> dict[str, Any]:
    """`_stats` of one value per run, the unfinished runs' as None (in no mean)."""
    return _stats([v if r.status == "ok" else None for v, r in zip(values, runs, strict=True)])


def _finished_stats(runs: Sequence[RunRecord], value: Callable[[RunRecord], float | None]) -> dict[str, Any]:
    return finished_stats(runs, [value(r) for r in runs])


def finished_seeds(summary: Mapping[str, Any]) -> list[int]:
    """The seeds of one method's summary whose run finished (the ones its means are over)."""
    statuses = summary.get("status") or ["ok"] * len(summary["seeds"])  # older results.json: no status
    return [seed for seed, status in zip(summary["seeds"], statuses, strict=True) if status == "ok"]


def seed_count(summary: Mapping[str, Any]) -> str:
    """A table's seeds cell: `3`, or `2 of 3` when a run did not finish."""
    done, runs = len(finished_seeds(summary)), len(summary["seeds"])
    return str(done) if done == runs else f"{done} of {runs}"


def summarize(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Per method: held-out primal accuracy per seed and mean, dual accuracy, agreement, curves.

    Every statistic is over the finished runs only (`per_seed` holds None for the others): a run
    killed at step 64 of 72 is not a 72-step result; its measurements stay in `runs`.
    """
    out: dict[str, Any] = {}
    for method in METHODS:
        runs = sorted((r for r in records if r.method == method), key=lambda r: r.seed)
        if not runs:
            continue
        out[method] = {
            "seeds": [r.seed for r in runs],
            "primal_accuracy": _finished_stats(runs, lambda r: r.final_primal),
            "primal_accuracy_before": _finished_stats(runs, lambda r: r.primal_before),
            "dual_accuracy": _finished_stats(runs, lambda r: r.dual_before if r.method == "warm_start" else r.dual_after),
            "dual_accuracy_before": _finished_stats(runs, lambda r: r.dual_before),
            "reward_truth_agreement": _finished_stats(runs, lambda r: r.agreement),
            "reward_rate": _finished_stats(runs, lambda r: r.reward_rate),
            "wall_s": _finished_stats(runs, lambda r: r.wall_s),
            "status": [r.status for r in runs],
            "curves": {str(r.seed): r.curve for r in runs},
            "dual_curves": {str(r.seed): r.dual_curve for r in runs},
            "runs": [asdict(r) for r in runs],
        }
    return out


def write_results(path: Path, config: Mapping[str, Any], records: Sequence[RunRecord], extra: Mapping[str, Any]) -> dict:
    """Write `results.json` (config, per-method summary, timings) and return it."""
    data = {"config": dict(config), "methods": summarize(records), **dict(extra)}
    path.write_text(json.dumps(data, indent=2, default=_json_default))
    return data


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:5.1f}"


def format_table(records: Sequence[RunRecord]) -> str:
    """The before/after table (means over seeds; held-out greedy accuracy in %)."""
    summary = summarize(records)
    lines = [
        "| method | seeds | primal before | primal after | change | dual before | dual after | reward-truth agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.items():
        before = s["primal_accuracy_before"]["mean"]
        after = s["primal_accuracy"]["mean"]
        change = None if before is None or after is None else after - before
        change_txt = "-" if change is None else f"{100 * change:+.1f}"
        lines.append(
            f"| {method} | {seed_count(s)} | {_pct(before)} | {_pct(after)} | {change_txt} | "
            f"{_pct(s['dual_accuracy_before']['mean'])} | {_pct(s['dual_accuracy']['mean'])} | "
            f"{_pct(s['reward_truth_agreement']['mean'])} |"
        )
    return "\n".join(lines)


def format_per_seed(records: Sequence[RunRecord]) -> str:
    """Held-out primal accuracy (%) after training, one row per method, one column per seed."""
    seeds = sorted({r.seed for r in records})
    lines = ["| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|---|" + "---|" * (len(seeds) + 1)]
    summary = summarize(records)
    for method, s in summary.items():
        by_seed = dict(zip(s["seeds"], s["primal_accuracy"]["per_seed"], strict=True))
        status = dict(zip(s["seeds"], s["status"], strict=True))
        cells = [_pct(by_seed.get(seed)) if status.get(seed, "ok") == "ok" else status[seed] for seed in seeds]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {_pct(s['primal_accuracy']['mean'])} |")
    return "\n".join(lines)


def warm_start_accuracy(records: Sequence[RunRecord]) -> dict[int, float]:
    """Held-out primal accuracy of each seed's warm start (every run of a seed starts from it)."""
    return {r.seed: r.primal_before for r in records if r.primal_before is not None and math.isfinite(r.primal_before)}


def y_limits(values: Sequence[float], pad: float = Y_PAD, min_span: float = Y_MIN_SPAN) -> tuple[float, float]:
    """Axis limits (%) holding every value with `pad` points to spare, at least `min_span` wide, within 0-100."""
    lo, hi = min(values) - pad, max(values) + pad
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    if lo < 0:  # shifted, not cut: the span stays
        lo, hi = 0.0, hi - lo
    if hi > 100:
        lo, hi = max(0.0, lo - (hi - 100)), 100.0
    return lo, hi


def draw_curves(records: Sequence[RunRecord], total_steps: int, title: str = "") -> Any:
    """The accuracy-vs-steps figure: one colour per method (thin: seeds, thick: mean), and always the
    warm start as a dashed horizontal line (the `warm_start` control's, or the runs' starting point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn: list[float] = []
    warm = warm_start_accuracy(records)
    for method in METHODS:
        runs = [r for r in records if r.method == method]
        unfinished = [r.curve for r in runs if r.curve and r.status != "ok"]  # dotted, in no mean
        if method == "warm_start":  # drawn for every plot: the line each method is judged against
            curves = [[(0, acc), (total_steps, acc)] for acc in warm.values()]
        elif runs:
            curves = [r.curve for r in runs if r.curve and r.status == "ok"]
        else:
            continue
        color = _COLORS[method]
        for curve, style in [(c, "-") for c in curves] + [(c, ":") for c in unfinished]:
            xs, ys = zip(*curve, strict=True)
            ax.plot(xs, [100 * y for y in ys], color=color, alpha=0.25, linewidth=1, linestyle=style)
            drawn += [100 * y for y in ys]
        mean = _mean_curve(curves)
        if mean:
            xs, ys = zip(*mean, strict=True)
            label = (f"warm_start (no RL): {100 * ys[0]:.1f}%" if method == "warm_start"
                     else f"{method} (n={len(curves)})")
            ax.plot(xs, [100 * y for y in ys], color=color, linewidth=2.5, label=label,
                    linestyle="--" if method == "warm_start" else "-", marker=None if method == "warm_start" else "o",
                    markersize=3)
    if drawn:
        ax.set_ylim(*y_limits(drawn))
    ax.set_xlim(0, max(1, total_steps))
    ax.set_xlabel("GRPO step (verl main_ppo)")
    ax.set_ylabel("held-out primal accuracy, greedy (%)")
    ax.set_title(title or "two-sum: DuPO without labels vs controls")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    return fig


def plot_curves(records: Sequence[RunRecord], path: Path, total_steps: int, title: str = "") -> Path:
    """`draw_curves` saved as a PNG at `path`."""
    import matplotlib.pyplot as plt

    fig = draw_curves(records, total_steps, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _seed_gains(records: Sequence[RunRecord], method: str) -> dict[int, float]:
    """Held-out gain (points) of each finished seed of `method`."""
    return {r.seed: 100 * (r.primal_after - r.primal_before) for r in records
            if r.method == method and r.status == "ok" and r.primal_after is not None and r.primal_before is not None}


def _oracle_comparison(records: Sequence[RunRecord], method: str) -> str:
    """`; oracle +X (Y% of its gain)`, the oracle taken on the method's finished seeds (its warm
    starts): a method run on fewer seeds is never compared with an oracle mean over warm starts it
    never had."""
    oracle, mine = _seed_gains(records, "oracle"), _seed_gains(records, method)
    if not mine or not set(mine) <= set(oracle):
        return "; no oracle on the same seeds"
    reference = statistics.fmean(oracle[seed] for seed in mine)
    gain = statistics.fmean(mine.values())
    where = "" if set(mine) == set(oracle) else " on the same seeds"
    share = f" ({100 * gain / reference:.0f}% of its gain)" if reference > 0 else ""
    return f"; oracle {reference:+.1f}{where}{share}"


def closing_lines(records: Sequence[RunRecord], steps: int) -> list[str]:
    """What training gained, one plain line per trained method (mean over seeds, held-out greedy accuracy):
    before -> after, the change in points, the budget, the reward it learnt from, and for a method
    without labels its share of the gold-label oracle's gain when the oracle ran."""
    summary = summarize(records)
    gains: dict[str, tuple[float, float, float]] = {}
    for method, s in summary.items():
        before, after = s["primal_accuracy_before"]["mean"], s["primal_accuracy"]["mean"]
        if method != "warm_start" and before is not None and after is not None:
            gains[method] = (100 * before, 100 * after, 100 * (after - before))
    oracle = gains.get("oracle")
    lines = []
    for method, (before, after, gain) in gains.items():
        runs = summary[method]
        seeds = len(finished_seeds(runs))
        last = max((c[-1][0] for c in runs["curves"].values() if c), default=steps)
        text = (f"{method}: held-out accuracy {before:.1f}% -> {after:.1f}% ({gain:+.1f} points) in {last} GRPO "
                f"steps, {_REWARD.get(method, 'no labels')}" + (f", mean of {seeds} seeds" if seeds > 1 else ""))
        if oracle is not None and method not in _REWARD:
            text += _oracle_comparison(records, method)
        failed = [f"seed {seed}: {status}" for seed, status in zip(runs["seeds"], runs["status"], strict=True)
                  if status != "ok"]
        if failed:
            text += f"; not finished: {', '.join(failed)}"
        lines.append(text)
    return lines


def _mean_curve(curves: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Mean over curves at the steps every curve has."""
    if not curves:
        return []
    common = set.intersection(*(set(s for s, _ in c) for c in curves))
    return [(s, statistics.fmean(dict(c)[s] for c in curves)) for s in sorted(common)]
