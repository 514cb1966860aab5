"""The translation demo's rows, main_ppo commands, replayed-reward control and result helpers."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dupo_verl.demo import translation_data as td
from dupo_verl.demo import translation_demo as demo
from dupo_verl.demo.two_sum_data import read_rows
from reward_fns import compute_score


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> demo.TranslationDemoConfig:
    out = tmp_path_factory.mktemp("trdemo")
    return demo.TranslationDemoConfig(output=out, warm_sentences=30, rl_sentences=20, val_sentences=10,
                                      methods=demo.METHODS)


@pytest.fixture(scope="module")
def data(config):
    return demo.prepare_data(config, Path(config.output) / "data", demo.RL_METHODS)


def _as_dict(argv):
    return {o.split("=", 1)[0].lstrip("+"): o.split("=", 1)[1] for o in argv}


def test_splits_are_disjoint_and_sized(data, config):
    warm, heldout = read_rows(data["warm"]), read_rows(data["heldout"])
    rl = read_rows(data["train_dupo"])
    ids = [{r["extra_info"]["id"] for r in rows} for rows in (warm, rl, heldout)]
    assert [len(s) for s in ids] == [30, 20, 10]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_method_rows_differ_only_in_agent_and_guards(data):
    rows = {m: read_rows(data[f"train_{m}"]) for m in demo.RL_METHODS}
    agents = {m: {r["agent_name"] for r in rows[m]} for m in rows}
    assert agents == {"dupo": {"dupo_agent"}, "dupo_guards_off": {"dupo_agent"}, "oracle": {"single_turn_agent"},
                      "shuffled": {"dupo_shuffled_agent"}}
    for m in rows:
        for a, b in zip(rows["dupo"], rows[m], strict=True):
            assert a["prompt"][0]["content"] == b["prompt"][0]["content"]
            assert a["reward_model"] == b["reward_model"]  # the reference: the oracle's reward, DuPO's log only
            params_a, params_b = a["extra_info"]["dupo"]["params"], b["extra_info"]["dupo"]["params"]
            if m == "dupo_guards_off":
                assert params_b["language_check"] == "off" and params_b["copy_threshold"] == 0.0
                assert {k: v for k, v in params_a.items() if k not in ("language_check", "copy_threshold")} == \
                    {k: v for k, v in params_b.items() if k not in ("language_check", "copy_threshold")}
            else:
                assert params_a == params_b and params_b["language_check"] == td.DETECTOR
    with pytest.raises(ValueError, match="unknown method"):
        demo.method_rows(rows["dupo"], "warm_start")


def test_each_method_builds_the_two_sum_command_of_its_agent(config, data, tmp_path):
    grpo = replace(config.grpo, steps=5, seed=2)
    runs = {m: _as_dict(demo.method_command(config, "cpu", m, grpo, tmp_path / "warm", data, tmp_path / m)[1])
            for m in demo.RL_METHODS}
    loops = {m: r["actor_rollout_ref.rollout.agent.default_agent_loop"] for m, r in runs.items()}
    assert loops == {"dupo": "dupo_agent", "dupo_guards_off": "dupo_agent", "oracle": "single_turn_agent",
                     "shuffled": "dupo_shuffled_agent"}
    for m, r in runs.items():
        assert r["data.train_files"] == str(data[f"train_{m}"])
        assert r["trainer.experiment_name"] == f"{m}_seed2"
        assert r["dupo.hybrid_weight"] == "0.0"  # no reference in any DuPO reward
        assert r["reward.custom_reward_function.name"] == "compute_score"
        assert r["data.val_files"] == f"[{data['val_primal']},{data['val_dual']}]"
        assert r["trainer.total_training_steps"] == "5"
        assert r["actor_rollout_ref.rollout.agent.agent_loop_config_path"] == str(data["agent_loops"])
        shared = {k: v for k, v in r.items() if k not in ("data.train_files", "trainer.experiment_name",
                                                          "actor_rollout_ref.rollout.agent.default_agent_loop",
                                                          "trainer.rollout_data_dir", "trainer.default_local_dir")}
        base = {k: v for k, v in runs["dupo"].items() if k in shared}
        assert shared == base, m
    assert "dupo_verl.demo.replay_agent.ReplayDuPOAgentLoop" in data["agent_loops"].read_text()


def test_the_commands_compose_with_verls_config(config, data, tmp_path):
    """Hydra accepts every override of a method's command (verl's own config, `--cfg job`)."""
    argv = demo.method_command(config, "cpu", "dupo_guards_off", config.grpo, tmp_path / "warm", data, tmp_path / "r")[1]
    argv = [o for o in argv if not o.startswith(("+ray_kwargs", "transfer_queue"))]
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *argv, "--cfg", "job"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"verl not importable here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "default_agent_loop: dupo_agent" in proc.stdout


def test_validation_rows_score_against_reference_and_source(data):
    primal, dual = read_rows(data["val_primal"]), read_rows(data["val_dual"])
    heldout = read_rows(data["heldout"])
    assert len(primal) == len(dual) == len(heldout) == 10
    for p, d, h in zip(primal, dual, heldout, strict=True):
        assert p["data_source"] == demo.PRIMAL_SOURCE and d["data_source"] == demo.DUAL_SOURCE
        assert p["agent_name"] == d["agent_name"] == "single_turn_agent"
        reference, source = h["reward_model"]["ground_truth"], h["extra_info"]["dupo"]["duals"][0]["value"]
        assert p["reward_model"]["ground_truth"] == reference and d["reward_model"]["ground_truth"] == source
        assert reference in d["prompt"][0]["content"] and "into English" in d["prompt"][0]["content"]
        assert compute_score(p["data_source"], reference, reference, p["extra_info"])["score"] == 1.0
        copy = compute_score(p["data_source"], source, reference, p["extra_info"])
        assert copy["chrf"] < 0.5 and copy["bleu"] < 0.2  # copying the source is no translation


def test_replayed_reward_is_another_rollouts_and_reproducible():
    from dupo_verl.demo.replay_agent import RewardReplay

    replay = RewardReplay(window=3, seed=1)
    assert replay.draw("a") == 0.0  # nothing observed yet: the prior
    for r in (0.1, 0.2, 0.3, 0.4):
        replay.observe(r)
    draws = {replay.draw(k) for k in range(50)}
    assert draws <= {0.2, 0.3, 0.4} and len(draws) > 1  # the window holds the last 3
    again = RewardReplay(window=3, seed=1)
    for r in (0.1, 0.2, 0.3, 0.4):
        again.observe(r)
    assert [again.draw(k) for k in range(20)] == [replay.draw(k) for k in range(20)]
    replay.observe(7.0)
    assert max(replay.draw(k) for k in range(50)) == 1.0  # clipped to [0, 1]
    with pytest.raises(ValueError, match="window"):
        RewardReplay(window=0)


def test_curves_last3_and_guard_rates():
    steps = {0: {"val-core/translation/primal/reward/mean@1": 0.2, "val-aux/translation/primal/bleu/mean@1": 0.05},
             1: {"dupo/near_copy/mean": 0.5, "dupo/wrong_language/mean": 0.0, "dupo/reward/mean": 0.4},
             2: {"dupo/near_copy/mean": 0.1, "dupo/wrong_language/mean": 0.2, "dupo/reward/mean": 0.6,
                 "val-core/translation/primal/reward/mean@1": 0.3, "val-aux/translation/primal/bleu/mean@1": 0.1}}
    assert demo.metric_curve(steps, demo.PRIMAL_SOURCE, "bleu") == [(0, 0.05), (2, 0.1)]
    assert demo.last3([(0, 0.1), (1, 0.2), (2, 0.3), (3, 0.7)]) == pytest.approx(0.4)
    assert demo.last3([]) is None
    rates = demo.guard_rates(steps)
    assert rates["near_copy"] == pytest.approx(0.3) and rates["near_copy_last"] == 0.1
    assert rates["wrong_language"] == pytest.approx(0.1) and rates["reward"] == pytest.approx(0.5)
    assert rates["gold_acc"] is None and rates["score"] is None


def test_config_and_cli_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        demo.TranslationDemoConfig(output=tmp_path, methods=("dupo", "bogus")).validate()
    with pytest.raises(ValueError, match="val_sentences"):
        demo.TranslationDemoConfig(output=tmp_path, val_sentences=3).validate()
    proc = subprocess.run([sys.executable, "-m", "dupo_verl", "demo", "translation", "--output", str(tmp_path),
                           "--methods", "dupo,bogus"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: unknown method(s) ['bogus']")
    assert "Traceback" not in proc.stderr


def test_a_plain_rerun_never_deletes_finished_runs(tmp_path):
    finished = tmp_path / "seed0" / "dupo" / "results.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    with pytest.raises(ValueError, match=r"already holds a demo's runs \(seed0\).*--resume"):
        demo.run_demo(demo.TranslationDemoConfig(output=tmp_path, methods=("warm_start",)))
    assert finished.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0"]
