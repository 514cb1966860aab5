"""`dupo-verl demo translation` on a smoke budget: the real `prepare translation` rows, a real (tiny)
warm start, real `main_ppo` GRPO runs on CPU through the `translation` task with the Dupish
language guard imported inside verl's workers.

`dupo` (reward = chrF of the back-translation, guards on) runs 2 steps (one method: the CI budget;
`shuffled`, whose loop adds only the replayed reward to this one, passed the same checks when it
was added): its rewards are chrF values in [0, 1] equal to DuPO's logged reward, the dual was
asked, the guard metrics are logged, held-out chrF/BLEU are measured before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_TIMEOUT_S = float(os.environ.get("DUPO_E2E_TIMEOUT_S", "600"))
SMOKE = [
    "--seeds", "1", "--warm-sentences", "200", "--rl-sentences", "40", "--val-sentences", "16",
    "--hidden-size", "64", "--num-heads", "2", "--warm-max-steps", "20", "--warm-lr", "3e-3",
    "--steps", "2", "--batch-size", "4", "--group-size", "2", "--test-freq", "1",
]


@pytest.fixture(scope="module")
def demo_output(e2e_root: Path) -> Path:
    out = e2e_root / "demo_tr"
    proc = subprocess.run(
        [sys.executable, "-m", "dupo_verl", "demo", "translation", "--output", str(out),
         "--methods", "warm_start,dupo", "--run-timeout", str(RUN_TIMEOUT_S), *SMOKE],
        capture_output=True, text=True, timeout=3 * RUN_TIMEOUT_S,
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, f"demo failed (rc={proc.returncode})\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return out


def test_translation_demo_trains_through_main_ppo(demo_output: Path):
    results = json.loads((demo_output / "results.json").read_text())
    assert set(results["methods"]) == {"warm_start", "dupo"}
    for method in ("dupo",):
        summary = results["methods"][method]
        assert summary["status"] == ["ok"]
        run = summary["runs"][0]
        assert run["detail"]["leftover_pids"] == []
        assert [step for step, _ in run["curve"]] == [0, 1, 2]  # held-out chrF before training + each step
        assert all(0.0 <= chrf <= 1.0 for _, chrf in run["curve"])
        assert [step for step, _ in run["detail"]["bleu_curve"]] == [0, 1, 2]
        for key in ("primal_chrf", "primal_bleu", "dual_chrf", "dual_bleu", "primal_rejected"):  # 0-100
            assert 0.0 <= run["detail"]["after"][key] <= 100.0
        shortcuts = run["detail"]["shortcuts"]["overall"]  # every rollout put to the guards, from verl's dumps
        assert shortcuts["rollouts"] == 2 * 4 * 2 and shortcuts["unparsed"] == 0  # steps x prompts x group
        assert sum(shortcuts[k] for k in ("ok", "no_answer", "near_copy", "wrong_language", "partial_copy")) \
            == pytest.approx(1.0)
        assert summary["shortcut_rejected"]["per_seed"] == [shortcuts["rejected"]]
        steps = [json.loads(line) for line in (demo_output / "seed0" / method / "steps.jsonl").read_text().splitlines()]
        train = [s for s in steps if "critic/score/mean" in s]
        assert [s["step"] for s in train] == [1, 2]
        for s in train:
            assert 0.0 <= s["critic/score/min"] <= s["critic/score/max"] <= 1.0
            assert s["dupo/dual_tokens/mean"] > 0 or s["dupo/no_answer/mean"] + s["dupo/near_copy/mean"] \
                + s["dupo/wrong_language/mean"] == 1.0  # the dual was asked unless every answer was rejected
            assert s["dupo/dual_errors/mean"] == 0
            for guard in ("near_copy", "wrong_language"):
                assert 0.0 <= s[f"dupo/{guard}/mean"] <= 1.0
            # DuPO's training reward is its logged reward (chrF of the back-translation)
            assert s["critic/score/mean"] == pytest.approx(s["dupo/reward/mean"], abs=1e-6)
            assert 0.0 <= s["dupo/gold_acc/mean"] <= 1.0  # chrF against the reference: logged, not paid
    config = json.loads((demo_output / "config.json").read_text())
    dupo_argv = config["main_ppo_overrides"]["dupo/seed0"]
    assert "+dupo.hybrid_weight=0.0" in dupo_argv and any(o.endswith("default_agent_loop=dupo_agent") for o in dupo_argv)
    assert (demo_output / "chrf_vs_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert "| dupo |" in (demo_output / "results.md").read_text()
    assert "| dupo | 0 |" in (demo_output / "per_seed.md").read_text()  # every run, seed by seed
