"""What the translation demo may add to the warm start's supervised examples, and its "recipe" key.

Real LLMs open the round trip's copy shortcut from both ends: asked to translate English into
English, the dual returns it unchanged (`copy_through`), and the policy itself now and then answers
in the source language (`primal_copy`). A tiny model trained only on clean pairs does neither, so a
guards-off run could never find the shortcut; these examples give it what a real model has.
The recipe string (e.g. "copy_through=0.25,primal_copy=0.1") is part of the warm start's `--resume`
key, so a warm start is never reused for other data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from dupo_verl.demo.examples import DUAL, PRIMAL, Example, Problem
from dupo_verl.tasks import DualTask

# recipe key -> the demo option that sets it (named in errors)
RECIPE_OPTIONS = {"copy_through": "--warm-copy-through", "primal_copy": "--warm-primal-copy"}


def warm_recipe(copy_through: float = 0.0, primal_copy: float = 0.0) -> str:
    """The recipe of these shares ("" for none, so warm starts made before recipes stay reusable)."""
    parts = []
    for key, share in (("copy_through", copy_through), ("primal_copy", primal_copy)):
        if not 0.0 <= share < 1.0:  # also rejects NaN
            raise ValueError(f"{RECIPE_OPTIONS[key]}: the share must be in [0, 1), got {share}")
        if share:
            parts.append(f"{key}={share:g}")
    return ",".join(parts)


def recipe_share(recipe: str, key: str) -> float:
    """The share a recipe gives `key` (0 when absent)."""
    for part in recipe.split(","):
        name, _, value = part.partition("=")
        if name == key:
            return float(value)
    return 0.0


def _chosen(problems: Sequence[Problem], share: float, salt: str, seed: int) -> list[Problem]:
    return random.Random(f"{salt}:{seed}").sample(list(problems), round(share * len(problems)))


def copy_through_examples(task: DualTask, problems: Sequence[Problem], share: float, seed: int) -> list[Example]:
    """Dual examples whose text is already English: the dual learns to return it unchanged, so a
    copied source comes back whole. `share` is their number relative to the real dual examples."""
    out = []
    for problem in _chosen(problems, share, "copy_through", seed):
        dual = problem.duals[0].dual
        out.append(Example(kind=DUAL, messages=task.dual_messages(dual, dual.value), target=dual.value, dual=dual))
    return out


def primal_copy_examples(problems: Sequence[Problem], share: float, seed: int) -> list[Example]:
    """Primal examples answered with the English source itself: sampled, the warm-started policy
    copies about this share of the time, as an LLM that sometimes answers in the source language."""
    return [Example(kind=PRIMAL, messages=p.primal.messages, target=p.duals[0].dual.value)
            for p in _chosen(problems, share, "primal_copy", seed)]


def recipe_examples(task: DualTask, problems: Sequence[Problem], recipe: str, seed: int) -> dict[str, list[Example]]:
    """The extra examples of a recipe, by role (the `primal_extra` / `dual_extra` of `warm_start`)."""
    return {PRIMAL: primal_copy_examples(problems, recipe_share(recipe, "primal_copy"), seed),
            DUAL: copy_through_examples(task, problems, recipe_share(recipe, "copy_through"), seed)}
