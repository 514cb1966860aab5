"""`dupo_shuffled_agent` of the translation demo: DuPO's pipeline paid a reward of ANOTHER rollout.

The two-sum control (`shuffled_agent.py`) pays a coin at DuPO's rate, right for a 0/1 reward. A
translation reward is a continuous chrF, so this control pays each rollout a real DuPO reward drawn
from the last `window` rollouts of this worker (about one batch): the rewards are permuted across
samples, the same distribution as DuPO's, but carrying no information about this sample. The draw
is made before the sample's own reward joins the window; a rerun with the same seed
(`DUPO_DEMO_COIN_SEED`) draws the same positions. The real reward stays in `dupo_reward`.
"""

from __future__ import annotations

import os
import random
import threading
from collections import deque
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

from dupo_verl.demo.shuffled_agent import _sample_key
from dupo_verl.verl.agent_loop import DuPOAgentLoop


class RewardReplay:
    """Pays one of the last `window` observed rewards, chosen by (seed, key); `prior` before any."""

    def __init__(self, window: int = 256, prior: float = 0.0, seed: int = 0) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._recent: deque[float] = deque(maxlen=window)
        self._prior = float(prior)
        self._seed = seed
        self._lock = threading.Lock()  # agent loops of one worker run concurrently

    def draw(self, key: object) -> float:
        with self._lock:
            if not self._recent:
                return self._prior
            return self._recent[random.Random(f"{self._seed}/{key!r}").randrange(len(self._recent))]

    def observe(self, reward: float) -> None:
        with self._lock:
            self._recent.append(min(1.0, max(0.0, float(reward))))


_REPLAY: RewardReplay | None = None  # one per worker (verl builds an agent loop per sample)


class ReplayDuPOAgentLoop(DuPOAgentLoop):
    """`dupo_agent` whose reward is another recent rollout's DuPO reward."""

    def __init__(self, *args: Any, coin_window: int = 256, **kwargs: Any) -> None:
        global _REPLAY
        super().__init__(*args, **kwargs)
        if _REPLAY is None:
            _REPLAY = RewardReplay(window=int(coin_window), seed=int(os.environ.get("DUPO_DEMO_COIN_SEED", "0")))
        self.replay = _REPLAY

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        key = _sample_key(kwargs)  # before the first await: in the order verl started the rollouts
        output = await super().run(sampling_params, **kwargs)
        paid = self.replay.draw(key)  # drawn before this sample's own reward is known
        self.replay.observe(float(output.reward_score or 0.0))
        output.reward_score = paid
        return output
