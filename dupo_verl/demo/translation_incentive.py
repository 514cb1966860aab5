"""What the round-trip reward pays for a shortcut, with the guards on and off.

A short run may never stumble on a shortcut, yet the incentive is there from step 0: this module
scores hand-made answers to held-out sources with the real DuPO scorer (`score_response`, the
dual being the given model, greedy, through the `hf` backend) under the guards-on task and the
guards-off task, and reports the mean reward and rejection share of each kind of answer:
- `reference`: the true translation (what the reward should pay most);
- `copy`: the English source itself (the dual copies it back);
- `half_copy`: the first half of the reference's words, then the second half of the source's;
- `truncated`: the first half of the reference's words (honest but partial: no guard targets it).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dupo_verl.scoring import DualOptions, score_response
from dupo_verl.tasks import DualTask, get_task
from dupo_verl.tasks.base import DualQuestion

ANSWER_KINDS = ("reference", "copy", "half_copy", "truncated")


def shortcut_answers(source: str, reference: str) -> dict[str, str]:
    """The answers of `ANSWER_KINDS` to one (source, reference) pair."""
    ref_words, src_words = reference.split(), source.split()
    half_ref = ref_words[: max(1, len(ref_words) // 2)]
    return {"reference": reference, "copy": source,
            "half_copy": " ".join(half_ref + src_words[len(src_words) // 2:]),
            "truncated": " ".join(half_ref)}


def guards_off_task(task: DualTask, guards_off: Mapping[str, Any]) -> DualTask:
    """The same task with the params in `guards_off` (every guard off)."""
    return get_task(task.name, **{**task.params, **guards_off})


async def _score_all(tasks: Mapping[str, DualTask], pairs: Sequence[tuple[str, str]], generate,
                     options: DualOptions) -> dict[str, dict[str, dict[str, float]]]:
    async def one(setting: str, kind: str, index: int, source: str, answer: str) -> tuple[str, str, float, bool]:
        dual = DualQuestion(masked_text="", variable="", value=source, template=0)
        result = await score_response(tasks[setting], [dual], answer, generate, options, f"{setting}/{kind}/{index}")
        rejected = any(result.metrics.get(f"dupo_{r}", 0.0) > 0 for r in ("near_copy", "wrong_language", "partial_copy"))
        return setting, kind, result.reward, rejected

    jobs = [one(setting, kind, i, source, answer)
            for setting in tasks for i, (source, reference) in enumerate(pairs)
            for kind, answer in shortcut_answers(source, reference).items()]
    scored = await asyncio.gather(*jobs)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for setting in tasks:
        table[setting] = {}
        for kind in ANSWER_KINDS:
            mine = [(reward, rejected) for s, k, reward, rejected in scored if s == setting and k == kind]
            table[setting][kind] = {"reward": statistics.fmean(r for r, _ in mine),
                                    "rejected": statistics.fmean(float(x) for _, x in mine), "answers": len(mine)}
    return table


def shortcut_incentive(model_dir: Path, task: DualTask, pairs: Sequence[tuple[str, str]], guards_off: Mapping[str, Any],
                       options: DualOptions, device: str = "cpu") -> dict[str, dict[str, dict[str, float]]]:
    """`table[setting][kind]` = mean DuPO reward and rejected share of that kind of answer, for the
    settings "guards on" (`task`) and "guards off", the dual being `model_dir` (greedy)."""
    from dupo_verl.generation.batcher import MicroBatcher
    from dupo_verl.generation.hf import HFBackend

    if not pairs:
        raise ValueError("no (source, reference) pairs to score")
    backend = HFBackend(str(model_dir), device=device, dtype="float32")
    tasks = {"guards on": task, "guards off": guards_off_task(task, guards_off)}

    async def run() -> dict[str, dict[str, dict[str, float]]]:
        async with MicroBatcher(backend, seed=0) as generate:
            return await _score_all(tasks, pairs, generate, options)

    try:
        return asyncio.run(run())
    finally:
        backend.close()


def format_incentive(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Markdown: one row per answer kind, reward and rejected share per setting."""
    settings = list(table)
    head = "| answer | " + " | ".join(f"reward, {s} | rejected, {s}" for s in settings) + " |"
    lines = [head, "|---|" + "---|---|" * len(settings)]
    for kind in ANSWER_KINDS:
        cells = [f"{table[s][kind]['reward']:.3f} | {100 * table[s][kind]['rejected']:.0f} %" for s in settings]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
