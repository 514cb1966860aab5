"""Does the dual reward separate right from wrong answers on this model? Numbers and one figure.

Reads `dupo-verl rerank` output: the four selection accuracies (first sample, majority vote, DuPO
choice, pass@n), the dual accuracy of right vs wrong candidates, and how often a right candidate
out-scores a wrong one (AUROC, 0.5 = no signal).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupo_verl.offline.io import read_placed_rows
from dupo_verl.offline.rerank import METHODS, duals_all_failed, needs_redo


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Rerank rows, each checked (`check_result_row`): a file of another kind, or a value no rerank
    run writes, is one error naming the row and the field, never a crash or a silent verdict."""
    rows, places = read_placed_rows(path)
    if not rows:  # a summary of nothing would print "rows: 0" and pass as a finished report
        raise ValueError(f"{path} holds no rows; is this `dupo-verl rerank` output, and did the run write any?")
    seen: dict[str, str] = {}
    for lineno, (row, place) in enumerate(zip(rows, places, strict=True), 1):
        for key in ("id", "candidates"):
            if key not in row:
                raise ValueError(f"{path}: row {lineno} has no {key!r}; is this `dupo-verl rerank` output?")
        problem = check_result_row(row)
        if problem is not None:
            raise ValueError(f"{path}: row {lineno} (id {row['id']!r:.40}): {problem}")
        ident = str(row["id"])
        if ident in seen:  # e.g. two outputs concatenated: each problem would count twice
            raise ValueError(f"id {ident!r:.40} appears twice ({seen[ident]} and {place}); one row per problem")
        seen[ident] = place
    return rows


def check_result_row(row: Mapping[str, Any]) -> str | None:
    """What is wrong with one rerank row for `summarize`, or None.

    Verdicts must be booleans (a string "no" is truthy), dual accuracies finite numbers in [0, 1]
    (NaN would poison every mean and make `--json` invalid), generation counts non-negative integers.
    """
    candidates = row["candidates"]
    if not isinstance(candidates, list):
        return f"field 'candidates' must be a list of objects, got {type(candidates).__name__}"
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, Mapping):
            return f"field 'candidates'[{i}] must be an object, got {type(candidate).__name__} {candidate!r:.40}"
        acc = candidate.get("dual_accuracy")
        if acc is not None and not _is_share(acc):
            return f"field 'candidates'[{i}].dual_accuracy must be a number in [0, 1] or null, got {acc!r:.40}"
        if "correct" in candidate and not isinstance(candidate["correct"], bool):
            return f"field 'candidates'[{i}].correct must be true or false, got {candidate['correct']!r:.40}"
    return _object_problem(row, "correct", METHODS, lambda v: isinstance(v, bool), "true or false", None) or (
        _object_problem(row, "generations", COUNTED, _is_count, "a non-negative integer", 0)
    )


def _object_problem(
    row: Mapping[str, Any], field: str, keys: Sequence[str], valid: Callable[[Any], bool], expected: str, missing: Any
) -> str | None:
    """What is wrong with the optional object `row[field]` whose `keys` must each be `expected`
    (a key it lacks reads as `missing`), or None."""
    value = row.get(field)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"field '{field}' must be an object, got {type(value).__name__}"
    for key in keys:
        item = value.get(key, missing)
        if not valid(item):
            return f"field '{field}.{key}' must be {expected}, got {item!r:.40}"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_share(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


COUNTED = ("primal_samples", "dual_requests", "dual_samples", "verify_timeouts")
def all_failed_message(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The error line for a run in which every row failed (None otherwise): its summary holds no
    result, so the command must not end as if it did."""
    failed = [r for r in rows if needs_redo(r)]
    if not rows or len(failed) < len(rows):
        return None
    first = failed[0]
    error = " ".join(str(first.get("error") or _failure(first)).split())[:300]
    return f"every row failed ({len(failed)} of {len(rows)}); nothing was graded. First (id {first.get('id')}): {error}"


def _failure(row: Mapping[str, Any]) -> str:
    if duals_all_failed(row):
        return f"no dual question was answered ({row['failed_dual_questions']} dual request(s) failed)"
    return str(row.get("status"))


def auroc(right: Sequence[float], wrong: Sequence[float]) -> float | None:
    """P(a right candidate scores above a wrong one), ties counting one half.

    >>> auroc([1.0, 0.5], [0.0, 0.5])
    0.875
    """
    if not right or not wrong:
        return None
    ordered = sorted(wrong)
    wins = 0.0
    for value in right:
        below = _count_below(ordered, value)
        ties = _count_below(ordered, value, inclusive=True) - below
        wins += below + 0.5 * ties
    return wins / (len(right) * len(wrong))


def _count_below(ordered: Sequence[float], value: float, inclusive: bool = False) -> int:
    return (bisect.bisect_right if inclusive else bisect.bisect_left)(ordered, value)


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Selection accuracies over the rows that succeeded and carry verdicts, and dual accuracy of
    right/wrong candidates. A failed or invalid row is counted as failed, never graded: a request
    that timed out says nothing about whether the answer was right (older outputs gave such rows
    all-false verdicts; they are ignored here too). A row whose dual requests all failed is failed
    (its choice was the vote count); partial dual failures and unusable gold values are counted."""
    succeeded = [r for r in rows if not needs_redo(r)]
    graded = [r for r in succeeded if isinstance(r.get("correct"), Mapping)]
    invalid = sum(1 for r in rows if r.get("status") == "invalid")
    summary: dict[str, Any] = {
        "rows": len(rows),
        "rows_with_gold": len(graded),
        "rows_failed": len(rows) - len(succeeded) - invalid,
        "rows_invalid": invalid,
        "rows_without_dual_verdict": sum(
            1 for r in rows if duals_all_failed(r) or (r.get("status") == "failed" and r.get("failed_dual_questions"))
        ),
        "rows_without_duals": sum(1 for r in rows if r.get("status") == "ok" and not r.get("num_duals")),
        "failed_dual_questions": sum(_count(r.get("failed_dual_questions")) for r in succeeded),
        "rows_with_failed_dual_questions": sum(1 for r in succeeded if _count(r.get("failed_dual_questions"))),
    }
    unusable = [r for r in rows if r.get("gold_unusable")]
    summary["rows_gold_unusable"] = len(unusable)
    if unusable:
        summary["gold_unusable_first"] = f"id {unusable[0].get('id')}: {unusable[0]['gold_unusable']}"
    for method in METHODS:
        hits = sum(r["correct"].get(method) is True for r in graded)
        summary[f"{method}_accuracy"] = hits / len(graded) if graded else None
    right, wrong, ungraded = [], [], []
    for row in succeeded:
        for candidate in row.get("candidates", []):
            acc = candidate.get("dual_accuracy")
            if acc is None:
                continue
            if "correct" not in candidate:
                ungraded.append(float(acc))
            elif candidate["correct"] is True:
                right.append(float(acc))
            else:
                wrong.append(float(acc))
    summary["dual_accuracy_right"] = _mean(right)
    summary["dual_accuracy_wrong"] = _mean(wrong)
    summary["candidates_right"] = len(right)
    summary["candidates_wrong"] = len(wrong)
    summary["candidates_ungraded"] = len(ungraded)
    summary["auroc_right_vs_wrong"] = auroc(right, wrong)
    generations = [r.get("generations") or {} for r in rows if r.get("status") == "ok"]
    if generations:
        for key in COUNTED[:3]:
            summary[f"{key}_per_problem"] = sum(g.get(key, 0) for g in generations) / len(generations)
        summary["verify_timeouts"] = sum(g.get("verify_timeouts", 0) for g in generations)
    summary["_scores"] = {"right": right, "wrong": wrong, "ungraded": ungraded}
    return summary


def _count(value: Any) -> int:
    return value if _is_count(value) else 0


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def format_summary(summary: Mapping[str, Any]) -> str:
    """Human-readable lines; the four selection accuracies first."""
    lines = [
        f"rows: {summary['rows']} (with gold: {summary['rows_with_gold']}, failed: {summary['rows_failed']}, "
        f"invalid: {summary.get('rows_invalid', 0)}, without dual questions: {summary['rows_without_duals']})"
    ]
    lines += _problem_lines(summary)
    if summary["rows_with_gold"]:
        for method in METHODS:
            lines.append(f"{method + ' accuracy:':<22}{summary[f'{method}_accuracy']:.4f}")
    elif summary["rows_failed"] or summary.get("rows_invalid"):  # nothing graded: not 0.0000, which would read as "all wrong"
        for method in METHODS:
            lines.append(f"{method + ' accuracy:':<22}n/a (no row succeeded with a gold answer)")
    else:
        lines.append("no gold answers: selection accuracies need a gold answer per row")
    for side in ("right", "wrong"):
        value = summary.get(f"dual_accuracy_{side}")
        if value is not None:
            lines.append(
                f"dual accuracy ({side}):   {value:.4f} over {summary[f'candidates_{side}']} candidates"
            )
    if summary.get("auroc_right_vs_wrong") is not None:
        lines.append(f"AUROC right vs wrong:  {summary['auroc_right_vs_wrong']:.4f}")
    for key in ("primal_samples", "dual_requests", "dual_samples"):
        if f"{key}_per_problem" in summary:
            lines.append(f"{key} per problem: {summary[f'{key}_per_problem']:.2f}")
    if summary.get("verify_timeouts"):
        lines.append(
            f"verify timeouts: {summary['verify_timeouts']} answer checks timed out (counted as different answers)"
        )
    return "\n".join(lines)


def _problem_lines(summary: Mapping[str, Any]) -> list[str]:
    """What the accuracies leave out or rest on less: rows without dual verdicts, partial dual
    failures, unusable gold values (each only when there are any)."""
    lines = []
    if summary.get("rows_without_dual_verdict"):
        lines.append(
            f"no dual verdict:      {summary['rows_without_dual_verdict']} rows (every dual request failed; counted "
            "as failed, not graded; see --dual-timeout-s, --max-retries; --resume redoes them)"
        )
    if summary.get("failed_dual_questions"):
        lines.append(
            f"failed dual requests: {summary['failed_dual_questions']} in {summary['rows_with_failed_dual_questions']} "
            "graded rows (their candidates were ranked on the dual questions that answered)"
        )
    if summary.get("rows_gold_unusable"):
        lines.append(
            f"gold unusable:        {summary['rows_gold_unusable']} rows left unlabelled "
            f"(first: {summary['gold_unusable_first']})"
        )
    return lines


def print_quietly(text: str) -> None:
    """Print to stdout; a reader that stopped reading (`| head -1`) ends the printing quietly, as for
    any Unix tool, rather than as an error (the command's files are still written)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # stdout may have no descriptor (captured)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's exit-time flush must not fail again
            os.close(devnull)


def plot_summary(summary: Mapping[str, Any], out: str | Path) -> Path:
    """Histogram of dual accuracy (right vs wrong candidates) beside the four selection accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = summary["_scores"]
    fig, (left, right_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    bins = [i / 10 for i in range(11)]
    if scores["right"] or scores["wrong"]:
        # each class as shares of its own candidates, so a rare class stays visible
        for side, color in (("right", "tab:green"), ("wrong", "tab:red")):
            values = scores[side]
            if values:
                left.hist(
                    values,
                    bins=bins,
                    weights=[1 / len(values)] * len(values),
                    histtype="step",
                    linewidth=2,
                    color=color,
                    label=f"{side} ({len(values)})",
                )
        left.set_ylabel("share of candidates")
        left.set_title("dual accuracy of right vs wrong candidates")
        left.legend()
    else:
        left.hist(scores["ungraded"], bins=bins, color="tab:blue")
        left.set_ylabel("candidates")
        left.set_title("dual accuracy of candidates (no gold answers)")
    left.set_xlabel("dual accuracy")
    values = [summary.get(f"{m}_accuracy") for m in METHODS]
    if summary["rows_with_gold"]:
        bars = right_ax.bar(
            METHODS, [v or 0.0 for v in values], color=["grey", "tab:blue", "tab:orange", "tab:purple"]
        )
        right_ax.bar_label(bars, labels=[f"{v:.3f}" for v in values])
        right_ax.set_ylim(0, 1.05)
        right_ax.set_title(f"selection accuracy over {summary['rows_with_gold']} problems")
    else:
        right_ax.text(0.5, 0.5, "no gold answers", ha="center", va="center")
        right_ax.set_axis_off()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
