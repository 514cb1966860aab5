"""The two-sum demo's judges of issue 15: `dupo_likelihood`, `dupo_anchored`, `dupo_ensemble_anchored`.

Each is its base method's command plus exactly its judge's options, composes with verl's own Hydra
config, and trains on its base method's rows; the anchored judges validate on `dupo_agent` rows
(their `dupo` reward manager needs the live verdict of every row, validation included).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dupo_verl.demo import ppo
from dupo_verl.demo.methods import METHODS, RL_METHODS
from dupo_verl.demo.two_sum_data import method_rows, read_rows, validation_rows
from dupo_verl.scoring import DualOptions

NEW = {"dupo_likelihood": "dupo", "dupo_anchored": "dupo", "dupo_ensemble_anchored": "dupo_ensemble"}


def _paths(tmp_path: Path) -> ppo.RunPaths:
    return ppo.RunPaths(model=tmp_path / "model", train_files=tmp_path / "train.parquet",
                        val_files=[tmp_path / "val.parquet"], agent_loop_config=tmp_path / "loops.yaml",
                        workdir=tmp_path / "run", frozen_dual=tmp_path / "warm_start")


def _overrides(method: str, tmp_path: Path) -> dict[str, str]:
    argv = ppo.overrides(method, _paths(tmp_path), ppo.GRPOSettings(), device="cpu")
    as_dict = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in argv}
    assert len(as_dict) == len(argv), f"{method}: a key given twice"
    return as_dict


def test_every_judge_is_a_method_of_the_demo():
    assert set(NEW) <= set(METHODS) and set(NEW) <= set(RL_METHODS)


@pytest.mark.parametrize("method", sorted(NEW))
def test_each_judge_adds_only_its_own_options_to_its_base(method, tmp_path):
    new, base = _overrides(method, tmp_path), _overrides(NEW[method], tmp_path)
    differ = {k for k in new.keys() | base.keys() if new.get(k) != base.get(k)} - {"trainer.experiment_name"}
    frozen = {o.split("=", 1)[0] for o in ppo.frozen_dual_overrides(Path("m"), 1, 1, "cpu")}
    if method == "dupo_likelihood":
        assert differ == {"+dupo.dual_mode"} and new["+dupo.dual_mode"] == "likelihood"
    else:  # the anchored judges: live AND frozen must accept, the frozen one is the warm start
        assert new["+dupo.judge"] == "anchored" and new["+dupo.dual_aggregate"] == "min"
        assert new["reward.reward_manager.name"] == "dupo"
        assert new["reward.reward_model.model_path"] == str(tmp_path / "warm_start")
        expected = {"+dupo.judge"} | ({"+dupo.dual_aggregate"} if method == "dupo_anchored" else set())
        assert differ - frozen == expected
    assert new["actor_rollout_ref.rollout.agent.default_agent_loop"] == "dupo_agent"
    options = DualOptions.from_mapping({k.removeprefix("+dupo."): yaml.safe_load(v)  # as Hydra parses them
                                        for k, v in new.items() if k.startswith("+dupo.")})
    assert options.hybrid_weight == 0.0  # no gold label reaches any judge's reward


def test_the_anchored_ensemble_composes_with_verls_config(tmp_path):
    """The judge with the most options (the others' keys are a subset, checked above)."""
    method = "dupo_ensemble_anchored"
    argv = ppo.overrides(method, _paths(tmp_path), ppo.GRPOSettings(steps=5, batch_size=4, group_size=2), "cpu")
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job", *argv],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load(proc.stdout)
    assert config["dupo"]["judge"] == "anchored" and config["dupo"]["dual_questions_per_rollout"] == 2
    assert config["reward"]["reward_manager"]["name"] == "dupo"


def test_judges_train_on_their_base_rows_and_anchored_ones_validate_on_dupo_agent(two_sum_files):
    train, heldout = (read_rows(p) for p in two_sum_files)
    for method, base in NEW.items():
        assert method_rows(train, method) == method_rows(train, base), method  # same rows, same planted labels
    plain, anchored = validation_rows(heldout), validation_rows(heldout, agent="dupo_agent")
    for rows_plain, rows_anchored in zip(plain, anchored, strict=True):
        assert {r["agent_name"] for r in rows_plain} == {"single_turn_agent"}
        assert {r["agent_name"] for r in rows_anchored} == {"dupo_agent"}
        assert [{**r, "agent_name": None} for r in rows_plain] == [{**r, "agent_name": None} for r in rows_anchored]


def test_the_frozen_ensemble_is_dupo_frozens_wiring_with_the_ensembles_duals(tmp_path):
    """`dupo_frozen_ensemble`: the frozen warm start alone asks both duals and both must accept;
    no live verdict (single_turn_agent), no anchored judge."""
    new, frozen, ensemble = (_overrides(m, tmp_path) for m in ("dupo_frozen_ensemble", "dupo_frozen", "dupo_ensemble"))
    differ = {k for k in new.keys() | frozen.keys() if new.get(k) != frozen.get(k)} - {"trainer.experiment_name"}
    assert differ == {"+dupo.dual_questions_per_rollout", "+dupo.dual_aggregate"}
    assert new["+dupo.dual_questions_per_rollout"] == ensemble["+dupo.dual_questions_per_rollout"] == "2"
    assert new["+dupo.dual_aggregate"] == ensemble["+dupo.dual_aggregate"] == "min"
    assert new["actor_rollout_ref.rollout.agent.default_agent_loop"] == "single_turn_agent"
    assert new["reward.reward_manager.name"] == "dupo" and "+dupo.judge" not in new
    assert new["reward.reward_model.model_path"] == str(tmp_path / "warm_start")


def test_the_frozen_ensemble_trains_on_the_ensembles_rows_through_the_reward_manager(two_sum_files):
    train, _ = (read_rows(p) for p in two_sum_files)
    frozen, ensemble = method_rows(train, "dupo_frozen_ensemble"), method_rows(train, "dupo_ensemble")
    assert {r["agent_name"] for r in frozen} == {"single_turn_agent"}
    assert {r["agent_name"] for r in ensemble} == {"dupo_agent"}
    assert [{**r, "agent_name": None} for r in frozen] == [{**r, "agent_name": None} for r in ensemble]
    assert all(len(r["extra_info"]["dupo"]["duals"]) == 2 for r in frozen)
    gold = [r["reward_model"]["ground_truth"] for r in train]
    assert all(f["reward_model"]["ground_truth"] != g for f, g in zip(frozen, gold, strict=True))  # labels planted
