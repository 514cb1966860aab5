"""How well the training reward tracked true correctness, from verl's rollout dumps.

verl writes every training rollout to `<rollout_data_dir>/<step>.jsonl` (`input`, `output`,
`score`, `gts`). The true sum is recomputed from the operands in the prompt itself, so the check
needs no label at all (the DuPO run's `gts` are planted wrong labels). Per step: the reward rate,
the true accuracy of the sampled answers, and the agreement of the reward (>= 0.5) with truth,
plus precision (P(right | rewarded)) and recall (P(rewarded | right)); the same per window of
`WINDOW_STEPS` steps (a judge that decays shows it there first); over the whole run, also the
commonest offsets (answer - truth) of the wrong answers the reward paid for.

These statistics are over the primal prompts `A+B=` (the headline: held-out primal accuracy is
the metric). When the rollouts also hold inverse prompts `A+V=S V=` (`dupo_alternate`), the same
statistics for them, with truth B = S - A, are reported apart under "inverse".
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupo_verl.tasks import DualTask

WINDOW_STEPS = 8
_OPERANDS = re.compile(r"(\d+)\+(\d+)=")
_INVERSE = re.compile(r"(\d+)\+V=(\d+) V=")


def true_sum(prompt_text: str) -> int | None:
    """A + B from the primal prompt text `A+B=` (None when the text has no such pair)."""
    match = _OPERANDS.search(prompt_text or "")
    return int(match.group(1)) + int(match.group(2)) if match else None


def true_difference(prompt_text: str) -> int | None:
    """S - A from the inverse prompt text `A+V=S V=` (None without one, or when S < A)."""
    match = _INVERSE.search(prompt_text or "")
    if match is None or int(match.group(2)) < int(match.group(1)):
        return None
    return int(match.group(2)) - int(match.group(1))


def step_agreement(
    records: Iterable[Mapping[str, Any]], task: DualTask, truth: Callable[[str], int | None] = true_sum
) -> dict[str, float]:
    """Reward-vs-truth statistics of one step's rollouts; `truth` reads the right answer from the
    prompt text (records where it finds none, e.g. prompts of the other kind, count as skipped)."""
    counts, _ = _tally(records, task, truth)
    return {**_rates(counts), "skipped": float(counts["skipped"])}


def _tally(
    records: Iterable[Mapping[str, Any]], task: DualTask, truth: Callable[[str], int | None]
) -> tuple[Counter[str], Counter[str]]:
    """One pass over the records: (counts, offsets). `offsets` counts answer - truth over the WRONG
    answers the reward paid for: a self-dual judge shares the policy's weights and so its systematic
    errors (a carry slip in the sum, +-10, is confirmed by the mirror borrow slip in the dual)."""
    counts: Counter[str] = Counter()
    offsets: Counter[str] = Counter()
    for rec in records:
        gold = truth(str(rec.get("input", "")))
        try:
            reward = float(rec.get("score"))
        except (TypeError, ValueError):
            reward = None
        if gold is None or reward is None:
            counts["skipped"] += 1
            continue
        answer = str(rec.get("output", ""))
        ok = bool(task.gold_score(answer, str(gold)))
        paid = reward >= 0.5
        counts.update(samples=1, rewarded=paid, right=ok, agree=paid == ok, hits=paid and ok)
        if paid and not ok:
            answer = answer.strip()
            offsets[f"{int(answer) - gold:+d}" if answer.isdigit() else "other"] += 1
    return counts, offsets


def _rates(counts: Mapping[str, int]) -> dict[str, float]:
    n = counts.get("samples", 0)
    out = {"samples": float(n)}
    if n:
        rewarded, right, hits = counts.get("rewarded", 0), counts.get("right", 0), counts.get("hits", 0)
        out.update(
            reward_rate=rewarded / n,
            true_accuracy=right / n,
            agreement=counts.get("agree", 0) / n,
            precision=hits / rewarded if rewarded else float("nan"),
            recall=hits / right if right else float("nan"),
        )
    return out


def read_rollouts(directory: Path) -> dict[int, list[dict[str, Any]]]:
    """{step: records} from verl's `<step>.jsonl` rollout dumps (unreadable lines skipped)."""
    steps: dict[int, list[dict[str, Any]]] = {}
    if not directory.is_dir():
        return steps
    for path in sorted(directory.glob("*.jsonl")):
        if not path.stem.isdigit():
            continue
        records = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        steps[int(path.stem)] = records
    return steps


def agreement_over_training(directories: Path | Sequence[Path], task: DualTask) -> dict[str, Any]:
    """Per-step statistics of the primal prompts and their sample-weighted totals over the whole
    run, plus the same under "inverse" for inverse prompts when there are any. Several directories
    are the stages of one continued run, in order: their steps are numbered on from each other."""
    steps: dict[int, list[dict[str, Any]]] = {}
    for directory in [directories] if isinstance(directories, Path) else directories:
        offset = max(steps, default=0)
        steps.update({offset + step: recs for step, recs in read_rollouts(directory).items()})
    out = _over_steps(steps, task, true_sum)
    inverse = _over_steps(steps, task, true_difference)
    if inverse["overall"]["samples"]:
        out["inverse"] = inverse
    return out


def _over_steps(
    steps: Mapping[int, list[dict[str, Any]]], task: DualTask, truth: Callable[[str], int | None]
) -> dict[str, Any]:
    tallies = {step: _tally(recs, task, truth) for step, recs in sorted(steps.items())}
    per_step = {step: {**_rates(c), "skipped": float(c["skipped"])} for step, (c, _) in tallies.items()}
    counts: Counter[str] = sum((c for c, _ in tallies.values()), Counter())
    offsets: Counter[str] = sum((o for _, o in tallies.values()), Counter())
    totals: dict[str, Any] = _rates(counts)
    if offsets:
        totals["false_positive_offsets"] = dict(offsets.most_common(5))
    windows: dict[int, Counter[str]] = {}
    for step, (c, _) in tallies.items():
        windows.setdefault((step - 1) // WINDOW_STEPS if step > 0 else 0, Counter()).update(c)
    per_window = {f"{w * WINDOW_STEPS + 1}-{(w + 1) * WINDOW_STEPS}": _rates(c) for w, c in sorted(windows.items())}
    return {"per_step": per_step, "per_window": per_window, "overall": totals}
