"""`dupo_shuffled_agent`: the demo's control loop, DuPO's pipeline with a reward blind to the sample.

It runs the real `dupo_agent` (primal rollout and dual pass, same compute), then replaces the
reward by a `RateMatchedCoin` draw: the same rate as the DuPO rewards this policy earns, but no
information about whether this sample is right. The real DuPO reward stays in the logged metrics
(`dupo_reward`). Registered only through the demo's agent-loop YAML; it is not a product feature.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

from dupo_verl.demo.coin import RateMatchedCoin
from dupo_verl.verl.agent_loop import DuPOAgentLoop

# verl builds a new agent loop per sample, so the coin lives at module level (one per worker),
# with the count of rollouts this worker has started (part of each sample's coin key).
_COIN: RateMatchedCoin | None = None
_STARTED: Iterator[int] = itertools.count()


def _coin(window: int) -> RateMatchedCoin:
    """This worker's coin, seeded by the run's seed (`DUPO_DEMO_COIN_SEED`) only, never the pid."""
    global _COIN, _STARTED
    if _COIN is None:
        seed = int(os.environ.get("DUPO_DEMO_COIN_SEED", "0"))
        _COIN, _STARTED = RateMatchedCoin(window=window, seed=seed), itertools.count()
    return _COIN


def _sample_key(row: Mapping[str, Any]) -> tuple[int, int | None]:
    """(rollouts this worker started before this one, the row's index): the same in every rerun.

    verl starts a worker's rollouts in batch order (each runs up to its first await before the
    next starts), and a worker's share of the batch is fixed by the data order, so the count is
    stable; the row index keeps two workers' n-th rollouts apart.
    """
    index = row.get("index", (row.get("extra_info") or {}).get("index"))
    return next(_STARTED), None if index is None else int(index)


class ShuffledDuPOAgentLoop(DuPOAgentLoop):
    """`dupo_agent` whose reward is a coin matched to the running DuPO reward rate."""

    def __init__(self, *args: Any, coin_window: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.coin = _coin(int(coin_window))

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        key = _sample_key(kwargs)  # before the first await: in the order verl started the rollouts
        output = await super().run(sampling_params, **kwargs)
        coin = self.coin.draw(key=key)  # drawn before this sample's DuPO reward is known
        self.coin.observe(float(output.reward_score or 0.0))
        output.reward_score = coin
        return output
