"""`dupo-verl demo two-sum` on a smoke budget: real warm start, real `main_ppo` GRPO runs on CPU.

1. The demo command itself (warm_start, dupo, shuffled and the dupo_ensemble remedy; 2 GRPO steps
   each) runs, writes its outputs, and its rewards are in [0, 1]; the DuPO runs' data carries only
   WRONG labels; the ensemble asks two dual questions per rollout, dupo one.
2. No label reaches the DuPO reward: one main_ppo run over every problem twice, once with its
   true label and once with a wrong one, decoded greedily; each pair must get the same reward.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dupo_verl.demo import ppo
from dupo_verl.demo.launch import run_job
from dupo_verl.demo.rollouts import read_rollouts, true_sum
from dupo_verl.demo.two_sum_data import method_rows, read_rows, write_rows

RUN_TIMEOUT_S = float(os.environ.get("DUPO_E2E_TIMEOUT_S", "600"))
SMOKE = [
    "--seeds", "1", "--num-problems", "400", "--val-problems", "40", "--operand-max", "19",
    "--hidden-size", "64", "--num-heads", "2", "--warm-max-steps", "300", "--warm-lr", "3e-3",
    "--warm-primal-target", "0.3", "--warm-dual-target", "0.5",
    "--steps", "2", "--batch-size", "8", "--group-size", "2", "--test-freq", "1",
]


@pytest.fixture(scope="module")
def demo_output(e2e_root: Path) -> Path:
    out = e2e_root / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "dupo_verl", "demo", "two-sum", "--output", str(out),
         "--methods", "warm_start,dupo,shuffled,dupo_ensemble", "--run-timeout", str(RUN_TIMEOUT_S), *SMOKE],
        capture_output=True, text=True, timeout=4 * RUN_TIMEOUT_S,
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, f"demo failed (rc={proc.returncode})\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return out


def test_demo_writes_its_outputs(demo_output: Path):
    results = json.loads((demo_output / "results.json").read_text())
    assert set(results["methods"]) == {"warm_start", "dupo", "shuffled", "dupo_ensemble"}
    for method in ("dupo", "shuffled", "dupo_ensemble"):
        summary = results["methods"][method]
        assert summary["status"] == ["ok"]
        curve = summary["curves"]["0"]
        assert [step for step, _ in curve] == [0, 1, 2]  # val before training + every step
        assert all(0.0 <= acc <= 1.0 for _, acc in curve)
        assert 0.0 <= summary["primal_accuracy"]["mean"] <= 1.0
        run = summary["runs"][0]
        assert run["detail"]["leftover_pids"] == []
        steps = [json.loads(line) for line in (demo_output / "seed0" / method / "steps.jsonl").read_text().splitlines()]
        assert [s["step"] for s in steps if "critic/score/mean" in s] == [1, 2]
        for s in steps:
            if "critic/score/mean" in s:
                assert 0.0 <= s["critic/score/min"] <= s["critic/score/max"] <= 1.0
                assert s["dupo/dual_tokens/mean"] > 0  # the dual was really asked
                assert s["dupo/dual_errors/mean"] == 0
                questions = s["dupo/dual_questions/mean"]  # per rollout (0 for one with no answer or a leak)
                assert 1.0 < questions <= 2.0 if method == "dupo_ensemble" else questions <= 1.0
    # both methods start from the same warm start: the same greedy step-0 accuracy
    assert results["methods"]["dupo"]["curves"]["0"][0] == results["methods"]["shuffled"]["curves"]["0"][0]
    config = json.loads((demo_output / "config.json").read_text())
    assert any("default_agent_loop=dupo_agent" in o for o in config["main_ppo_overrides"]["dupo/seed0"])
    assert (demo_output / "accuracy_vs_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert "| dupo |" in (demo_output / "results.md").read_text()


def test_dupo_run_saw_only_wrong_labels(demo_output: Path):
    for method in ("dupo", "shuffled", "dupo_ensemble"):
        dumps = read_rollouts(demo_output / "seed0" / method / "rollouts")
        records = [r for recs in dumps.values() for r in recs]
        assert len(records) == 2 * 8 * 2
        for rec in records:
            assert int(rec["gts"]) != true_sum(rec["input"])  # the planted label is never the truth
            assert 0.0 <= rec["score"] <= 1.0
        if method == "shuffled":
            assert {r["score"] for r in records} <= {0.0, 1.0}  # coins


def test_no_label_reaches_the_dupo_reward(demo_output: Path, e2e_root: Path):
    """Each problem twice, true and wrong label, greedy: the DuPO rewards of a pair must be equal,
    and a wrong-label row is still rewarded when its answer is right (a gold-based reward pays 0)."""
    model = demo_output / "seed0" / "warm_start"
    rows = read_rows(demo_output / "data" / "two_sum.parquet")[:16]
    truth = [dict(r, agent_name="dupo_agent") for r in rows]
    planted = method_rows(rows, "dupo", seed=5)
    work = e2e_root / "label_audit"
    train = write_rows(truth + planted, work / "train.parquet")
    paths = ppo.RunPaths(model=model, train_files=train,
                         val_files=[demo_output / "data" / "val_primal.parquet"],
                         agent_loop_config=demo_output / "data" / "agent_loops.yaml", workdir=work)
    grpo = ppo.GRPOSettings(steps=1, batch_size=32, group_size=2, test_freq=-1, save_final=False)
    argv = ppo.overrides("dupo", paths, grpo, "cpu") + [
        "actor_rollout_ref.rollout.top_k=1",  # greedy primal (temperature stays 1 for the log-probs)
        "data.shuffle=False", "trainer.val_before_train=False",
    ]
    tmp = e2e_root / "la"  # short: vLLM and Ray put AF_UNIX sockets here
    tmp.mkdir(exist_ok=True)
    job = run_job([sys.executable, "-m", "verl.trainer.main_ppo", *argv], cwd=work,
                  env=ppo.environment(paths, tmp, "cpu"), timeout_s=RUN_TIMEOUT_S,
                  log_path=work / "main_ppo.log", metrics_path=paths.metrics)
    assert job.ok, job.tail()
    assert not job.leftover_pids
    records = read_rollouts(paths.rollouts)[1]
    assert len(records) == 64
    by_prompt: dict[str, dict[bool, list[dict]]] = {}
    for rec in records:
        is_true = int(rec["gts"]) == true_sum(rec["input"])
        by_prompt.setdefault(rec["input"], {True: [], False: []})[is_true].append(rec)
    assert len(by_prompt) == 16
    compared = same = 0
    for pair in by_prompt.values():
        assert len(pair[True]) == len(pair[False]) == 2
        for t, f in zip(pair[True], pair[False], strict=True):
            if t["output"] == f["output"]:  # greedy: the same answer to the same prompt
                compared += 1
                same += t["score"] == f["score"]
    assert compared >= 28, f"greedy answers differed between copies in {32 - compared} of 32 pairs"
    assert same == compared, f"DuPO rewards differ with the label in {compared - same} of {compared} pairs"
    right_but_mislabelled = [
        r for pair in by_prompt.values() for r in pair[False]
        if r["output"].strip() == str(true_sum(r["input"])) and r["score"] > 0
    ]
    print(f"pairs compared {compared}; wrong-label rows rewarded for a right answer: {len(right_but_mislabelled)}")
