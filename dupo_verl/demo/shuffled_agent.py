"""`dupo_shuffled_agent`: the demo's control loop, DuPO's pipeline with a reward blind to the sample.

It runs the real `dupo_agent` (primal rollout and dual pass, same compute), then replaces the
reward by a `RateMatchedCoin` draw: the same rate as the DuPO rewards this policy earns, but no
information about whether this sample is right. The real DuPO reward stays in the logged metrics
(`dupo_reward`). Registered only through the demo's agent-loop YAML; it is not a product feature.
"""

from __future__ import annotations

import os
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

from dupo_verl.demo.coin import RateMatchedCoin
from dupo_verl.verl.agent_loop import DuPOAgentLoop

# verl builds a new agent loop per sample, so the coin lives at module level (one per worker).
_COIN: RateMatchedCoin | None = None


def _coin(window: int) -> RateMatchedCoin:
    global _COIN
    if _COIN is None:
        seed = int(os.environ.get("DUPO_DEMO_COIN_SEED", "0"))
        _COIN = RateMatchedCoin(window=window, seed=seed + os.getpid())
    return _COIN


class ShuffledDuPOAgentLoop(DuPOAgentLoop):
    """`dupo_agent` whose reward is a coin matched to the running DuPO reward rate."""

    def __init__(self, *args: Any, coin_window: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.coin = _coin(int(coin_window))

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        output = await super().run(sampling_params, **kwargs)
        coin = self.coin.draw()  # drawn before this sample's DuPO reward is known
        self.coin.observe(float(output.reward_score or 0.0))
        output.reward_score = coin
        return output
