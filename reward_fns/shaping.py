"""Turn a distance into a reward (the paper's exp(-lambda * d)) and mix several rewards."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["combine", "exp_shaping"]


def exp_shaping(distance: float, lam: float = 1.0) -> float:
    """``exp(-lam * distance)``: 1.0 at distance 0, falling towards 0; ``inf`` gives 0.0.

    >>> exp_shaping(0.0), round(exp_shaping(1.0, lam=2.0), 4)
    (1.0, 0.1353)
    """
    distance, lam = float(distance), float(lam)
    if math.isnan(distance) or distance < 0:
        raise ValueError(f"distance must be >= 0, got {distance}")
    if math.isnan(lam) or lam < 0 or math.isinf(lam):
        raise ValueError(f"lam must be a finite number >= 0, got {lam}")
    if lam == 0:
        return 1.0
    return math.exp(-lam * distance)


def combine(rewards: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted mean of named rewards; every reward needs a weight and every weight a reward.

    >>> combine({"dual": 1.0, "format": 0.0}, {"dual": 3, "format": 1})
    0.75
    """
    missing_weight, missing_reward = set(rewards) - set(weights), set(weights) - set(rewards)
    if missing_weight or missing_reward:
        raise ValueError(
            f"rewards and weights must name the same keys: no weight for {sorted(missing_weight)}, "
            f"no reward for {sorted(missing_reward)}"
        )
    total = 0.0
    weighted = 0.0
    for key, weight in weights.items():
        weight, reward = float(weight), float(rewards[key])
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight {key!r} must be finite and >= 0, got {weight}")
        if not math.isfinite(reward):
            raise ValueError(f"reward {key!r} must be finite, got {reward}")
        total += weight
        weighted += weight * reward
    if total <= 0:
        raise ValueError(f"weights sum to {total}; at least one must be > 0")
    return weighted / total
