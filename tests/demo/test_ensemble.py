"""`dupo_ensemble`: dupo's rows with two dual questions (hide B, hide A), paid only when both agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dupo_verl.demo import ppo
from dupo_verl.demo.two_sum_data import method_rows, read_rows
from dupo_verl.scoring import DualOptions, task_from_info


def _overrides(method: str, tmp_path: Path) -> dict[str, str]:
    paths = ppo.RunPaths(
        model=tmp_path / "model", train_files=tmp_path / "train.parquet",
        val_files=[tmp_path / "val.parquet"], agent_loop_config=tmp_path / "loops.yaml", workdir=tmp_path / "run",
    )
    return {o.split("=", 1)[0]: o.split("=", 1)[1] for o in ppo.overrides(method, paths, ppo.GRPOSettings())}


def test_rows_are_dupo_rows_with_both_operands_hidden(two_sum_files):
    rows = read_rows(two_sum_files[0])
    dupo, ensemble = method_rows(rows, "dupo"), method_rows(rows, "dupo_ensemble")
    assert len(ensemble) == len(dupo) == len(rows)
    for plain_row, row in zip(dupo, ensemble, strict=True):
        # the same prompt, agent and planted (wrong) label as dupo: only the dual questions differ
        assert {k: v for k, v in row.items() if k != "extra_info"} == {
            k: v for k, v in plain_row.items() if k != "extra_info"
        }
        a, b = map(int, re.fullmatch(r"(\d+)\+(\d+)=", row["prompt"][-1]["content"]).groups())
        task, duals = task_from_info(row["extra_info"]["dupo"])
        assert task.name == "two_sum" and task.params == {"strict": False, "hide": "both"}
        assert [(d.masked_text, d.value) for d in duals] == [(f"{a}+V=", str(b)), (f"{b}+V=", str(a))]
        assert row["reward_model"]["ground_truth"] != str(a + b)
        assert {k: v for k, v in row["extra_info"].items() if k != "dupo"} == {
            k: v for k, v in plain_row["extra_info"].items() if k != "dupo"
        }
    assert method_rows(rows, "dupo_ensemble") == ensemble  # deterministic


def test_a_row_whose_prompt_disagrees_with_its_label_is_named(two_sum_files):
    rows = read_rows(two_sum_files[0])
    rows[4]["reward_model"] = {**rows[4]["reward_model"], "ground_truth": "999"}
    with pytest.raises(ValueError, match="row 4: expected a two-sum prompt A\\+B= with its sum as the label"):
        method_rows(rows, "dupo_ensemble")


def test_command_asks_both_duals_and_takes_their_min(tmp_path):
    ensemble, dupo = _overrides("dupo_ensemble", tmp_path), _overrides("dupo", tmp_path)
    assert ensemble["+dupo.dual_questions_per_rollout"] == "2" and ensemble["+dupo.dual_aggregate"] == "min"
    assert dupo["+dupo.dual_questions_per_rollout"] == "1" and "+dupo.dual_aggregate" not in dupo  # default: mean
    assert ensemble["actor_rollout_ref.rollout.agent.default_agent_loop"] == "dupo_agent"
    differ = {k for k in ensemble.keys() | dupo.keys() if ensemble.get(k) != dupo.get(k)}
    assert differ == {"+dupo.dual_questions_per_rollout", "+dupo.dual_aggregate", "trainer.experiment_name"}
    assert DualOptions.from_mapping({"dual_aggregate": ensemble["+dupo.dual_aggregate"]}).dual_aggregate == "min"


def test_rows_carry_what_prepare_hide_both_writes(two_sum_files, tmp_path):
    """The demo's ensemble rows and `dupo-verl prepare two-sum --hide both` agree on every dual question."""
    from dupo_verl.cli import main

    both = tmp_path / "both.parquet"
    argv = ["prepare", "two-sum", "--output", str(both), "--num-problems", "300", "--operand-min", "0",
            "--operand-max", "19", "--seed", "3", "--val-fraction", repr(60 / 300), "--hide", "both", "--no-progress"]
    assert main(argv) == 0
    prepared = {r["prompt"][-1]["content"]: r["extra_info"]["dupo"] for r in read_rows(both)}
    ensemble = method_rows(read_rows(two_sum_files[0]), "dupo_ensemble")
    assert len(prepared) == len(ensemble) == 240
    for row in ensemble:
        assert row["extra_info"]["dupo"] == prepared[row["prompt"][-1]["content"]]
