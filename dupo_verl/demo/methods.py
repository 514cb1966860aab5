"""The two-sum demo's methods, named once: what `--methods` accepts, and the order of runs, tables and plots.

`warm_start` is the no-RL control (the warm-started model, measured); every other method is one
`main_ppo` run from it (their rows and rewards: `dupo_verl.demo.ppo`).
"""

from __future__ import annotations

METHODS = ("warm_start", "dupo", "oracle", "shuffled", "dupo_frozen", "dupo_alternate", "dupo_ensemble",
           "dupo_likelihood", "dupo_anchored", "dupo_ensemble_anchored", "dupo_frozen_ensemble")
ALL_METHODS = ("warm_start", "dupo", "oracle", "shuffled")  # `--methods all`; the remedies are opt-in
RL_METHODS = tuple(m for m in METHODS if m != "warm_start")  # trained by verl's main_ppo
