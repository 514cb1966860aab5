"""The shuffled control's coin: DuPO's reward rate, no information about the sample."""

from __future__ import annotations

import random
import statistics

import pytest

from dupo_verl.demo.coin import RateMatchedCoin


def test_prior_before_any_reward():
    coin = RateMatchedCoin(prior=0.25, seed=0)
    assert coin.rate == 0.25 and coin.observed == 0
    draws = [coin.draw() for _ in range(4000)]
    assert set(draws) <= {0.0, 1.0}
    assert abs(statistics.fmean(draws) - 0.25) < 0.03


def test_rate_follows_the_window_of_observed_rewards():
    coin = RateMatchedCoin(window=4, seed=0)
    for r in (1.0, 1.0, 0.0, 0.0):
        coin.observe(r)
    assert coin.rate == 0.5
    coin.observe(1.0)  # the oldest 1.0 leaves the window
    coin.observe(1.0)
    assert coin.rate == 0.5
    coin.observe(1.0)
    coin.observe(1.0)
    assert coin.rate == 1.0
    coin.observe(7.0)  # clipped to 1
    coin.observe(-3.0)  # clipped to 0
    assert coin.rate == 0.75


def test_matches_the_rate_but_not_the_sample():
    """Over a stream where the real reward is right 30% of the time, the coin pays ~30% but its
    agreement with the real reward is what independence predicts (0.3*0.3 + 0.7*0.7 = 0.58)."""
    coin = RateMatchedCoin(window=500, seed=1)
    rng = random.Random(2)
    pairs = []
    for _ in range(20000):
        real = 1.0 if rng.random() < 0.3 else 0.0
        paid = coin.draw()
        coin.observe(real)
        pairs.append((paid, real))
    paid_rate = statistics.fmean(p for p, _ in pairs)
    agreement = statistics.fmean(p == r for p, r in pairs)
    assert abs(paid_rate - 0.3) < 0.02
    assert abs(agreement - 0.58) < 0.02
    # a reward that copied the sample would agree 100%: the coin is far from it
    assert agreement < 0.65


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"prior": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        RateMatchedCoin(**kwargs)
