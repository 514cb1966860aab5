"""`dupo_alternate`: dupo's rows plus inverse rows (both roles label-free), same command as `dupo`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dupo_verl.cli import main
from dupo_verl.demo import ppo
from dupo_verl.demo import two_sum_demo as demo
from dupo_verl.demo.rollouts import agreement_over_training, true_difference
from dupo_verl.demo.two_sum_data import DUAL_SOURCE, method_rows, read_rows, validation_rows
from dupo_verl.plain import to_plain as plain
from dupo_verl.scoring import task_from_info
from dupo_verl.tasks import get_task

INVERSE_SOURCE = "dupo/two_sum_inverse"


def _operands(row: dict) -> tuple[int, int]:
    """(A, B) of a prepared two-sum row, from the structured dual question (not the prompt)."""
    _, (dual,) = task_from_info(row["extra_info"]["dupo"])
    return int(dual.masked_text.split("+")[0]), int(dual.value)


def _by_kind(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    primal = [r for r in rows if r["data_source"] == "dupo/two_sum"]
    inverse = [r for r in rows if r["data_source"] == INVERSE_SOURCE]
    assert len(primal) + len(inverse) == len(rows)
    return primal, inverse


def _key(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


def test_rows_are_dupo_rows_plus_one_inverse_row_per_problem(two_sum_files):
    rows = read_rows(two_sum_files[0])
    mixed = method_rows(rows, "dupo_alternate")
    primal, inverse = _by_kind(mixed)
    assert sorted(map(_key, primal)) == sorted(map(_key, method_rows(rows, "dupo")))
    assert len(inverse) == len(rows)
    assert {r["agent_name"] for r in mixed} == {"dupo_agent"}
    assert mixed == method_rows(rows, "dupo_alternate")  # deterministic
    kinds = [r["data_source"] == INVERSE_SOURCE for r in mixed]
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)  # shuffled together
    assert method_rows(rows, "dupo_alternate", seed=1) != mixed


def test_inverse_rows_show_the_sum_and_hide_b(two_sum_files):
    rows = read_rows(two_sum_files[0])
    _, inverse = _by_kind(method_rows(rows, "dupo_alternate"))
    by_index = {r["extra_info"]["index"]: r for r in rows}
    assert sorted(by_index) == sorted(r["extra_info"]["index"] for r in inverse)
    _, val_dual = validation_rows(rows)  # the held-out dual prompts, built the same way from each row
    val_prompt = {r["extra_info"]["index"]: r["prompt"] for r in val_dual}
    for row in inverse:
        source = by_index[row["extra_info"]["index"]]
        a, b = _operands(source)
        assert row["prompt"] == val_prompt[row["extra_info"]["index"]]
        assert row["prompt"] == [{"role": "user", "content": f"{a}+V={a + b} V="}]
        planted = row["reward_model"]["ground_truth"]
        assert planted != str(b) and int(planted) >= 0  # never the true answer
        task, duals = task_from_info(row["extra_info"]["dupo"])
        assert task.name == "two_sum_inverse" and task.params == {"strict": False}
        assert [(d.masked_text, d.value) for d in duals] == [(str(a), str(a + b))]
        assert task.dual_messages(duals[0], str(b)) == source["prompt"]  # judged by the primal prompt
        assert task.gold_score(str(b), planted) == 0.0


def test_alternate_training_file_round_trips_through_parquet(tmp_path):
    config = demo.DemoConfig(output=tmp_path, num_problems=120, val_problems=20, operand_max=19)
    paths = demo._prepare_data(config, tmp_path / "data", ["dupo", "dupo_alternate"])
    dupo = read_rows(paths["train_dupo"])
    mixed = [plain(r) for r in pd.read_parquet(paths["train_dupo_alternate"]).to_dict(orient="records")]
    primal, inverse = _by_kind(mixed)
    assert sorted(map(_key, primal)) == sorted(map(_key, dupo)) and len(inverse) == len(dupo) == 100
    for row in inverse:
        task, duals = task_from_info(row["extra_info"]["dupo"])
        a, s = (int(x) for x in row["prompt"][0]["content"].removesuffix(" V=").split("+V="))
        assert task.name == "two_sum_inverse" and duals[0].value == str(s)
        assert row["reward_model"]["ground_truth"] != str(s - a)
    # validation is what every method gets: held-out primal and dual rows only
    val = read_rows(paths["val_dual"])
    assert {r["data_source"] for r in val} == {DUAL_SOURCE}
    assert {r["extra_info"]["dupo"]["task"] for r in val} == {"two_sum"}


def _paths(tmp_path: Path, method: str) -> ppo.RunPaths:
    return ppo.RunPaths(
        model=tmp_path / "model", train_files=tmp_path / f"train_{method}.parquet",
        val_files=[tmp_path / "val_primal.parquet", tmp_path / "val_dual.parquet"],
        agent_loop_config=tmp_path / "loops.yaml", workdir=tmp_path / method,
    )


def test_overrides_differ_from_dupo_only_in_train_file_and_name(tmp_path):
    grpo = ppo.GRPOSettings(steps=7, batch_size=8, group_size=4, seed=2)
    for device in ("cpu", "cuda"):
        dupo = ppo.overrides("dupo", _paths(tmp_path, "dupo"), grpo, device)
        alt = ppo.overrides("dupo_alternate", _paths(tmp_path, "dupo"), grpo, device)
        changed = [(d, a) for d, a in zip(dupo, alt, strict=True) if d != a]
        assert changed == [("trainer.experiment_name=dupo_seed2", "trainer.experiment_name=dupo_alternate_seed2")]
    own = ppo.overrides("dupo_alternate", _paths(tmp_path, "dupo_alternate"), grpo)
    assert f"data.train_files={tmp_path / 'train_dupo_alternate.parquet'}" in own
    assert "actor_rollout_ref.rollout.agent.default_agent_loop=dupo_agent" in own


def test_overrides_compose_with_verl_config(tmp_path):
    """`main_ppo --cfg job` composes the config without running: every key must exist in verl."""
    argv = ppo.overrides("dupo_alternate", _paths(tmp_path, "dupo_alternate"), ppo.GRPOSettings(steps=5))
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job", *argv],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = yaml.safe_load(proc.stdout)
    assert config["data"]["train_files"] == str(tmp_path / "train_dupo_alternate.parquet")
    assert config["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"] == "dupo_agent"
    assert config["trainer"]["experiment_name"] == "dupo_alternate_seed0"
    assert config["dupo"]["hybrid_weight"] == 0.0


def _rollout(prompt: str, reply: str, score: float) -> dict:
    return {"input": f"user\n{prompt}\nassistant\n", "output": reply, "gts": "999", "score": score, "step": 1}


def test_agreement_is_reported_per_kind(tmp_path):
    records = [
        _rollout("1+2=", "3", 1.0),  # primal: right, rewarded
        _rollout("1+2=", "4", 1.0),  # primal: wrong, rewarded
        _rollout("4+V=9 V=", "5", 1.0),  # inverse: right, rewarded
        _rollout("4+V=9 V=", "6", 0.0),  # inverse: wrong, not rewarded
        _rollout("4+V=9 V=", "7", 0.0),  # inverse: wrong, not rewarded
    ]
    (tmp_path / "1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = agreement_over_training(tmp_path, get_task("two_sum"))
    assert out["overall"] == {"reward_rate": 1.0, "true_accuracy": 0.5, "agreement": 0.5, "samples": 2,
                              "precision": 0.5, "recall": 1.0, "false_positive_offsets": {"+1": 1}}
    assert out["per_step"][1]["skipped"] == 3  # the inverse prompts are not primal samples
    assert out["inverse"]["overall"]["samples"] == 3 and out["inverse"]["overall"]["agreement"] == 1.0
    primal_only = tmp_path / "primal"
    primal_only.mkdir()
    (primal_only / "1.jsonl").write_text(json.dumps(records[0]) + "\n")
    assert "inverse" not in agreement_over_training(primal_only, get_task("two_sum"))
    assert true_difference("user\n4+V=9 V=\n") == 5 and true_difference("9+V=4 V=") is None
    assert true_difference("1+2=") is None


def test_cli_accepts_the_method_but_all_leaves_it_out(tmp_path, capsys, monkeypatch):
    assert "dupo_alternate" in demo.METHODS and "dupo_alternate" not in demo.ALL_METHODS
    monkeypatch.setattr(ppo, "cpu_support_available", lambda: False)
    # accepted: it gets as far as the CPU platform check (an unknown method stops earlier, with 2)
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--methods", "dupo_alternate", "--device", "cpu"]) == 1
    assert "verl_cpu_support" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"prompt": [{"role": "user", "content": "1+2+3="}]},
                                 {"reward_model": {"style": "rule", "ground_truth": "4"}}])
def test_inverse_row_of_a_bad_row_names_it(two_sum_files, bad):
    rows = read_rows(two_sum_files[0])[:3]
    rows[1] = {**rows[1], **bad}
    with pytest.raises(ValueError, match="row 1"):
        method_rows(rows, "dupo_alternate")
