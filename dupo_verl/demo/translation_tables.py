"""Per-seed tables of a translation demo's results (`per_seed.md`): every run's numbers, not only the
means, so that a claim can be checked seed by seed and the noise between seeds is visible."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dupo_verl.demo.results import last3


def _num(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return "-" if value is None else f"{scale * value:.{digits}f}"



def _runs(results: Mapping[str, Any]):
    for method, summary in results.get("methods", {}).items():
        for run in summary.get("runs", []):
            yield method, run


def heldout_rows(results: Mapping[str, Any]) -> list[str]:
    """One row per run: held-out corpus chrF/BLEU before and after, verl's validation curve (step 0,
    last 3, final), the dual's chrF after, the share of greedy held-out answers the guards reject, wall time."""
    lines = ["| method | seed | chrF before | chrF after | change | val chrF step 0 | last 3 | gain last 3 | "
             "final val | BLEU after | dual chrF after | held-out answers rejected % | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, run in _runs(results):
        before, after = run["detail"].get("before") or {}, run["detail"].get("after") or {}
        curve = run.get("curve") or []
        smoothed = last3(curve)
        change = None if not (before and after) else after["primal_chrf"] - before["primal_chrf"]
        lines.append(
            f"| {method} | {run['seed']} | {_num(before.get('primal_chrf'))} | {_num(after.get('primal_chrf'))} | "
            f"{_num(change)} | {_num(curve[0][1] if curve else None, scale=100)} | {_num(smoothed, scale=100)} | "
            f"{_num(None if smoothed is None else smoothed - curve[0][1], scale=100)} | "
            f"{_num(curve[-1][1] if curve else None, scale=100)} | {_num(after.get('primal_bleu'))} | "
            f"{_num(after.get('dual_chrf'))} | {_num(after.get('primal_rejected'))} | {_num(run.get('wall_s'), 0)} |")
    return lines


def _paid(by_verdict: Mapping[str, float]) -> str:
    return " / ".join(_num(by_verdict.get(k), 3) for k in ("ok", "wrong_language", "near_copy", "partial_copy"))


def shortcut_rows(results: Mapping[str, Any]) -> list[str]:
    """One row per trained run: the guards' verdicts (defaults on) on its training rollouts, overall and
    in the first and last 4 steps, chrF of the answers against their source, the mean training
    reward beside the (unpaid) chrF against the reference, and the mean reward the run paid the
    answers of each verdict (a shortcut paid more than a passed answer is one GRPO will learn)."""
    lines = ["| run | rollouts | ok % | no answer % | near-copy % | wrong language % | partial copy % | "
             "rejected % first 4 steps | last 4 steps | chrF vs source first 4 | last 4 | reward (mean) | "
             "chrF vs reference (mean) | reward paid: passed / wrong language / near-copy / partial copy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, run in _runs(results):
        rates = (run["detail"].get("shortcuts") or {}).get("overall")
        if not rates:
            continue
        guards = run["detail"].get("guards") or {}
        gold = guards.get("gold_acc") if guards.get("gold_acc") is not None else guards.get("score")
        lines.append(
            f"| {method} s{run['seed']} | {rates['rollouts']} | {_num(rates['ok'], 2, 100)} | "
            f"{_num(rates['no_answer'], 2, 100)} | {_num(rates['near_copy'], 2, 100)} | "
            f"{_num(rates['wrong_language'], 2, 100)} | {_num(rates.get('partial_copy'), 2, 100)} | "
            f"{_num(rates['rejected_first'], 2, 100)} | {_num(rates['rejected_last'], 2, 100)} | "
            f"{_num(rates['chrf_vs_source_first'], 3)} | {_num(rates['chrf_vs_source_last'], 3)} | "
            f"{_num(guards.get('reward'), 3)} | {_num(gold, 3)} | {_paid(rates.get('reward_by_verdict') or {})} |")
    return lines


def per_seed_markdown(results: Mapping[str, Any]) -> str:
    """`per_seed.md`: both tables with a line saying what they hold."""
    return ("Every run, seed by seed (held-out: sacrebleu corpus chrF/BLEU of the final checkpoint, greedy; "
            "val: verl's validation, mean sentence chrF):\n\n" + "\n".join(heldout_rows(results))
            + "\n\nThe guards' verdicts (defaults on) on every training rollout of each run:\n\n"
            + "\n".join(shortcut_rows(results)) + "\n")
