"""The shuffled control's coin: DuPO's reward rate, no information about the sample."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

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


def test_a_keyed_coin_depends_on_the_seed_and_the_key_only():
    """A keyed draw is the same for the same (seed, key) whatever was drawn before or by whom."""
    keys = [(n, n % 7) for n in range(200)]
    first = RateMatchedCoin(seed=5)
    again = RateMatchedCoin(seed=5)
    coins = [first.draw(key=k) for k in keys]
    assert [again.draw(key=k) for k in reversed(keys)] == coins[::-1]  # order of draws is irrelevant
    assert coins != [RateMatchedCoin(seed=6).draw(key=k) for k in keys]
    assert abs(statistics.fmean(coins) - 0.5) < 0.1  # still the prior's rate


def test_keyed_coins_are_the_same_in_another_process():
    """Python's hash() of a str differs per process; the keyed draw must not depend on it."""
    import subprocess
    import sys

    script = (
        "from dupo_verl.demo.coin import RateMatchedCoin\n"
        "c = RateMatchedCoin(seed=3)\n"
        "print(''.join(str(int(c.draw(key=(n, 'row', n * 3)))) for n in range(64)))\n"
    )
    here = RateMatchedCoin(seed=3)
    expected = "".join(str(int(here.draw(key=(n, "row", n * 3)))) for n in range(64))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PYTHONHASHSEED": "random", "PATH": ""}, cwd=str(Path(__file__).parents[2]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
