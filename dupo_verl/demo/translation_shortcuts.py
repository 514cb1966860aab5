"""How often a translation run's rollouts took a round-trip shortcut, measured the same way for
every method from verl's rollout dumps (`<rollout_data_dir>/<step>.jsonl`: `input`, `output`).

The run's own guard metrics (`dupo/near_copy/mean`, ...) exist only where the guards ran, and a
guards-off run counts nothing by construction; the evidence that the guards close a shortcut needs
the same yardstick on both. So each rollout's answer is put to the task's guards with their
defaults on (`TranslationTask.reject_answer`): the share rejected per reason, per step, is the
shortcut rate whether or not the run enforced it. Also kept: the mean chrF of the answers against
their own source (a drift toward copying shows here before any threshold is crossed), and the mean
reward the run paid the answers of each verdict (`reward_by_verdict`, from the dump's `score`): what
a shortcut actually earned in that run, against an answer the guards pass.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dupo_verl.tasks import DualTask
from dupo_verl.tasks.base import REJECTION_REASONS, DualQuestion
from dupo_verl.tasks.translation import chrf

ASSISTANT_MARK = "\nassistant\n"  # verl's dump decodes the ChatML prompt without special tokens
EDGE_STEPS = 4  # steps averaged for the "first" and "last" rates


def source_of(prompt_text: str) -> str | None:
    """The source sentence of a dumped translation prompt (the text after the instruction's blank
    line, before the assistant turn), or None when the prompt has no such shape."""
    user = prompt_text.rsplit(ASSISTANT_MARK, 1)[0] if ASSISTANT_MARK in prompt_text else None
    if user is None or "\n\n" not in user:
        return None
    source = user.rsplit("\n\n", 1)[1].strip()
    return source or None


def verdict(task: DualTask, prompt_text: str, response: str) -> tuple[str, float | None]:
    """("ok" | "no_answer" | a rejection reason | "unparsed", chrF of the answer against its source)."""
    source = source_of(prompt_text)
    if source is None:
        return "unparsed", None
    answer = task.extract_primal_answer(response)
    if not answer:
        return "no_answer", None
    reason = task.reject_answer(answer, [DualQuestion(masked_text="", variable="", value=source, template=0)])
    return reason or "ok", chrf(answer, source)


def _read_rollouts(rollout_dirs: Iterable[Path]) -> dict[int, list[dict[str, Any]]]:
    """Rollouts per step, the stages of a continued run numbered on."""
    per_step: dict[int, list[dict[str, Any]]] = {}
    offset = 0
    for folder in rollout_dirs:
        files = sorted(Path(folder).glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        steps = [int(p.stem) for p in files if p.stem.isdigit()]
        for path in files:
            if not path.stem.isdigit():
                continue
            rows = per_step.setdefault(offset + int(path.stem), [])
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line of an interrupted run
        offset += max(steps, default=0)
    return per_step


def shortcut_rates(rollout_dirs: Iterable[Path], task: DualTask) -> dict[str, Any]:
    """Per step and overall: the share of rollouts each guard (defaults on) rejects, no answers,
    the share passed, and the mean chrF of the answers against their source."""
    reasons = ("ok", "no_answer", *REJECTION_REASONS)
    per_step: dict[str, dict[str, float]] = {}
    totals: Counter[str] = Counter()
    copy_scores: list[float] = []
    paid: dict[str, list[float]] = {}
    for step, rows in sorted(_read_rollouts(rollout_dirs).items()):
        counts: Counter[str] = Counter()
        scores: list[float] = []
        for row in rows:
            kind, score = verdict(task, str(row.get("input", "")), str(row.get("output", "")))
            counts[kind] += 1
            if score is not None:
                scores.append(score)
            reward = _finite(row.get("score"))
            if reward is not None:
                paid.setdefault(kind, []).append(reward)
        judged = sum(counts.values()) - counts["unparsed"]
        if judged == 0:
            continue
        per_step[str(step)] = {**{k: counts[k] / judged for k in reasons},
                               "rejected": 1 - (counts["ok"] + counts["no_answer"]) / judged,
                               "chrf_vs_source": statistics.fmean(scores) if scores else 0.0, "rollouts": judged}
        totals.update(counts)
        copy_scores += scores
    judged = sum(totals.values()) - totals["unparsed"]
    overall: dict[str, Any] = {k: (totals[k] / judged if judged else None) for k in reasons}
    overall.update(rollouts=judged, unparsed=totals["unparsed"],
                   chrf_vs_source=statistics.fmean(copy_scores) if copy_scores else None,
                   rejected=(1 - (totals["ok"] + totals["no_answer"]) / judged) if judged else None,
                   reward_by_verdict={kind: statistics.fmean(v) for kind, v in sorted(paid.items())})
    steps = list(per_step.values())
    for edge, chosen in (("first", steps[:EDGE_STEPS]), ("last", steps[-EDGE_STEPS:])):
        for key in (*REJECTION_REASONS, "rejected", "chrf_vs_source"):
            overall[f"{key}_{edge}"] = statistics.fmean(s[key] for s in chosen) if chosen else None
    return {"overall": overall, "per_step": per_step}


def _finite(value: Any) -> float | None:
    """A dumped score as a float, or None (absent, not a number, NaN or infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def shortcut_summary(rates: Mapping[str, Any]) -> str:
    """One line: each reason's share over the run and over its last steps, in %."""
    overall = rates["overall"]
    parts = []
    for reason in REJECTION_REASONS:
        value, last = overall.get(reason), overall.get(f"{reason}_last")
        if value is not None:
            parts.append(f"{reason} {100 * value:.2f}% (last {EDGE_STEPS} steps {100 * (last or 0):.2f}%)")
    return ", ".join(parts) or "no rollouts"
