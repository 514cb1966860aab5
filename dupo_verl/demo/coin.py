"""The shuffled control's reward: a coin whose rate follows DuPO's, independent of the sample.

If DuPO's gains came from the reward's rate alone (how often GRPO sees a 1), this control would
gain as much. It keeps the same rate by tracking the running mean of the real DuPO rewards over a
window of recent samples and paying 1 with that probability. Each coin is drawn BEFORE the
sample's own DuPO reward is observed, so it carries no information about the sample.

A keyed draw (`draw(key=...)`) compares the rate with a number fixed by (seed, key) alone, so a
rerun with the same seed pays the same coins for the same samples, whatever process draws them
and in whatever order the samples finish (given the same rate).
"""

from __future__ import annotations

import random
import threading
from collections import deque


class RateMatchedCoin:
    """Bernoulli(p) rewards with p = mean of the last `window` observed rewards (`prior` before any)."""

    def __init__(self, window: int = 1024, prior: float = 0.5, seed: int | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 0.0 <= prior <= 1.0:
            raise ValueError(f"prior must be in [0, 1], got {prior}")
        self._recent: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._prior = prior
        self._rng = random.Random(seed)
        # the keyed draws' salt; without a seed a fresh one, so unseeded coins still differ per coin
        self._salt = seed if seed is not None else random.SystemRandom().getrandbits(64)
        self._lock = threading.Lock()  # agent loops of one worker run concurrently

    @property
    def rate(self) -> float:
        """The current probability of paying 1."""
        with self._lock:
            return self._sum / len(self._recent) if self._recent else self._prior

    @property
    def observed(self) -> int:
        return len(self._recent)

    def draw(self, key: object = None) -> float:
        """1.0 with probability `rate`, else 0.0.

        Without a `key` the uniform number comes from the coin's own seeded stream (the same coins
        only for the same order of draws). With one (ints/strs/tuples, whose repr is stable) it is
        `Random(f"{seed}/{key!r}")`, seeded through sha512 of that text: unlike `hash()`, the same in
        every process.
        """
        rate = self.rate
        if key is not None:
            return 1.0 if random.Random(f"{self._salt}/{key!r}").random() < rate else 0.0
        with self._lock:
            return 1.0 if self._rng.random() < rate else 0.0

    def observe(self, reward: float) -> None:
        """Add one real DuPO reward (clipped to [0, 1]) to the window."""
        value = min(1.0, max(0.0, float(reward)))
        with self._lock:
            if len(self._recent) == self._recent.maxlen:
                self._sum -= self._recent[0]
            self._recent.append(value)
            self._sum += value
