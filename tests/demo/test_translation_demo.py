"""The translation demo's rows, main_ppo commands, replayed-reward control and result helpers."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dupo_verl.demo import translation_data as td
from dupo_verl.demo import translation_demo as demo
from dupo_verl.demo import translation_recipe as recipe
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
                      "shuffled": {"dupo_shuffled_agent"}, "dupo_likelihood": {"dupo_agent"}}
    for m in rows:
        for a, b in zip(rows["dupo"], rows[m], strict=True):
            assert a["prompt"][0]["content"] == b["prompt"][0]["content"]
            assert a["reward_model"] == b["reward_model"]  # the reference: the oracle's reward, DuPO's log only
            params_a, params_b = a["extra_info"]["dupo"]["params"], b["extra_info"]["dupo"]["params"]
            if m == "dupo_guards_off":
                assert {k: params_b[k] for k in demo.GUARDS_OFF} == {
                    "language_check": "off", "copy_threshold": 0.0, "partial_copy_threshold": 0.0}
                assert {k: v for k, v in params_a.items() if k not in demo.GUARDS_OFF} == \
                    {k: v for k, v in params_b.items() if k not in demo.GUARDS_OFF}
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
                     "shuffled": "dupo_shuffled_agent", "dupo_likelihood": "dupo_agent"}
    assert runs["dupo_likelihood"].pop("dupo.dual_mode") == "likelihood"  # its only difference from dupo's command
    assert all("dupo.dual_mode" not in r for r in runs.values())
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
    with pytest.raises(ValueError, match="--val-sentences"):
        demo.TranslationDemoConfig(output=tmp_path, val_sentences=3).validate()
    with pytest.raises(ValueError, match=r"--incentive-pairs must be an integer in \[0, 500\]"):
        demo.TranslationDemoConfig(output=tmp_path, incentive_pairs=-1).validate()
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


@pytest.mark.parametrize("flag", ["collect", "resume"])
def test_a_continued_output_is_only_collected_as_the_continuation_it_is(tmp_path, flag, monkeypatch):
    """The translation demo shares the two-sum demo's guard: an output made with --continue-from,
    collected or resumed without it, would find no warm start and write empty tables over its results."""
    out, previous = tmp_path / "out48", tmp_path / "out24"
    previous.mkdir()
    out.mkdir()
    recorded = f'{{"continue_from": "{previous.resolve()}", "methods": ["warm_start", "dupo"]}}'
    (out / "config.json").write_text(recorded)
    (out / "results.md").write_text("kept")
    config = demo.TranslationDemoConfig(output=out, methods=("warm_start", "dupo"), **{flag: True})
    monkeypatch.setattr(demo.ppo, "cpu_support_available", lambda: True)  # as in the e2e venv: reach the guard
    with pytest.raises(ValueError, match=rf"made with --continue-from {previous.resolve()}; --{flag} it with"):
        demo.run_demo(config, log=lambda _: None)
    assert (out / "config.json").read_text() == recorded and (out / "results.md").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "results.md"]


# ---------------------------------------------------------------------------------------------
# Shortcut rates from the rollout dumps (the same yardstick for every method)
# ---------------------------------------------------------------------------------------------


def _dumped_prompt(source: str) -> str:
    """A translation prompt as verl's rollout dump writes it (ChatML decoded without special tokens)."""
    from dupo_verl.tasks.translation import translation_prompt

    return f"user\n{translation_prompt(source, 'English', 'Dupish')}\nassistant\n"


@pytest.fixture(scope="module")
def guard_task_and_pairs(data):
    from dupo_verl.demo.examples import read_problems, task_of

    heldout = read_problems(data["heldout"])
    pairs = [(p.duals[0].target, p.primal.target) for p in heldout]  # (English source, Dupish reference)
    return task_of(heldout), pairs


def test_source_is_read_back_from_the_dumped_prompt(guard_task_and_pairs):
    from dupo_verl.demo.translation_shortcuts import source_of

    _, pairs = guard_task_and_pairs
    for source, _ in pairs:
        assert source_of(_dumped_prompt(source)) == source
    for bad in ("", "assistant", "user\nno blank line here\nassistant\n", "\n\n", "user\nTranslate\n\n  \nassistant\n"):
        assert source_of(bad) is None


def test_source_parser_never_raises_on_any_text():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dupo_verl.demo.translation_shortcuts import source_of

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("ab \n\tassistnU\u00e9\u4e2d")), max_size=200))
    def check(text):
        found = source_of(text)
        assert found is None or (found and found in text)

    check()


def test_each_answer_gets_the_guards_verdict(guard_task_and_pairs):
    from dupo_verl.demo.translation_shortcuts import verdict

    task, pairs = guard_task_and_pairs
    source, reference = max(pairs, key=lambda pair: len(pair[0]))
    other_english = " ".join(s for s, _ in pairs if s != source)  # English, long enough to be checked
    prompt = _dumped_prompt(source)
    kind, score = verdict(task, prompt, reference)
    assert kind == "ok" and 0.0 <= score < 0.5
    assert verdict(task, prompt, source)[0] == "near_copy"
    assert verdict(task, prompt, source)[1] == pytest.approx(1.0)
    assert verdict(task, prompt, other_english)[0] == "wrong_language"  # English, but not a copy of this source
    assert verdict(task, prompt, "") == ("no_answer", None)
    assert verdict(task, "garbage without a prompt", reference) == ("unparsed", None)


def test_shortcut_rates_over_stages_and_torn_lines(guard_task_and_pairs, tmp_path):
    import json

    from dupo_verl.demo.translation_shortcuts import shortcut_rates, shortcut_summary

    task, pairs = guard_task_and_pairs
    source, reference = pairs[0]

    def dump(folder: Path, step: int, outputs: list[str], torn: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # what the run paid: a copy 0.9, a translation 0.3, nothing for no answer; one unreadable score
        paid = {source: 0.9, reference: 0.3, "": 0.0}
        lines = [json.dumps({"input": _dumped_prompt(source), "output": o, "step": step,
                             "score": paid[o] if (step, i) != (2, 0) else "nan"}) for i, o in enumerate(outputs)]
        (folder / f"{step}.jsonl").write_text("\n".join(lines) + ("\n{\"input\": \"tor" if torn else "\n"))

    first, second = tmp_path / "stage1", tmp_path / "stage2"
    dump(first, 1, [reference, reference, source, ""])
    dump(first, 2, [reference, source, source, source], torn=True)
    dump(second, 1, [reference] * 4)
    rates = shortcut_rates([first, second], task)
    assert sorted(rates["per_step"], key=int) == ["1", "2", "3"]  # the second stage numbered on
    assert rates["per_step"]["1"]["near_copy"] == 0.25 and rates["per_step"]["1"]["no_answer"] == 0.25
    assert rates["per_step"]["2"]["near_copy"] == 0.75 and rates["per_step"]["3"]["ok"] == 1.0
    overall = rates["overall"]
    assert overall["rollouts"] == 12 and overall["near_copy"] == pytest.approx(4 / 12)
    assert overall["rejected"] == pytest.approx(4 / 12)
    parts = [overall[k] for k in ("ok", "no_answer", "near_copy", "wrong_language", "partial_copy") if k in overall]
    assert sum(parts) == pytest.approx(1.0)
    assert overall["near_copy_first"] == pytest.approx((0.25 + 0.75 + 0.0) / 3)
    # the rewards each verdict was paid (the unreadable score skipped, never a NaN mean)
    assert overall["reward_by_verdict"] == pytest.approx({"near_copy": 0.9, "ok": 0.3, "no_answer": 0.0})
    assert "near_copy 33.33%" in shortcut_summary(rates)
    empty = shortcut_rates([tmp_path / "nothing"], task)
    assert empty["per_step"] == {} and empty["overall"]["rejected"] is None
    assert shortcut_summary(empty) == "no rollouts"


def test_shortcuts_are_measured_again_only_when_the_yardstick_changes(guard_task_and_pairs, tmp_path):
    import json

    from dupo_verl.demo.results import RunRecord
    from dupo_verl.tasks import get_task

    task, pairs = guard_task_and_pairs
    source, reference = pairs[0]
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "1.jsonl").write_text(json.dumps({"input": _dumped_prompt(source), "output": source}) + "\n")
    record = RunRecord("dupo", 0, 0.4, 0.8, detail={"rollout_dirs": [str(tmp_path / "r")]})
    demo.measure_shortcuts([record], task)
    first = record.detail["shortcuts"]
    assert first["overall"]["near_copy"] == 1.0 and first["guards"] == demo.jsonable_params(task)
    demo.measure_shortcuts([record], task)
    assert record.detail["shortcuts"] is first  # same yardstick: kept, not measured again
    no_copy_guard = get_task("translation", **{**task.params, "copy_threshold": 0.0, "partial_copy_threshold": 0.0,
                                               "language_check": "off"})
    demo.measure_shortcuts([record], no_copy_guard)
    assert record.detail["shortcuts"]["overall"]["ok"] == 1.0  # another yardstick: measured again
    saved = json.loads(json.dumps(record.detail, default=str))  # as run.json reads back
    record.detail = saved
    demo.measure_shortcuts([record], no_copy_guard)
    assert record.detail["shortcuts"] == saved["shortcuts"]


def test_gains_are_reported_as_a_share_of_the_oracles():
    def summary(before, after, gain3, near_copy=None):
        return {"seeds": [0], "primal_chrf_before": {"mean": before}, "primal_chrf_after": {"mean": after},
                "primal_bleu_after": {"mean": 10.0}, "val_chrf_last3": {"mean": 40.0}, "val_chrf_gain_last3": {"mean": gain3},
                "dual_chrf_after": {"mean": 80.0}, "shortcut_near_copy": {"mean": near_copy}}

    results = {"methods": {"warm_start": summary(40.0, 40.0, None), "dupo": summary(40.0, 43.0, 1.5, 0.001),
                           "oracle": summary(40.0, 44.0, 2.0, 0.0), "shuffled": summary(40.0, 39.0, -0.5)}}
    assert demo.oracle_share(results, "dupo", "corpus") == pytest.approx(0.75)
    assert demo.oracle_share(results, "dupo", "last3") == pytest.approx(0.75)
    assert demo.oracle_share(results, "shuffled", "corpus") == pytest.approx(-0.25)
    flat = {"methods": {**results["methods"], "oracle": summary(40.0, 40.0, 0.0)}}
    assert demo.oracle_share(flat, "dupo", "corpus") is None  # no oracle gain: no share, never a division by 0
    table = demo.format_table(results)
    assert "| dupo | 1 | 40.0 | 43.0 | 3.0 | 0.75 |" in table and "| 0.10 |" in table
    assert "| warm_start | 1 | 40.0 | 40.0 | 0.0 | - |" in table


def test_heldout_answers_rejected_by_the_guards_are_counted(data):
    from dupo_verl.demo.examples import read_problems, task_of

    problems = read_problems(data["heldout"])[:8]
    task = task_of(problems)
    references = [p.primal.target for p in problems]
    sources = [p.duals[0].target for p in problems]
    assert demo.rejected_percent(task, problems, references) == 0.0
    assert demo.rejected_percent(task, problems, sources) == 100.0  # copies of the source
    assert demo.rejected_percent(task, problems, sources[:2] + references[2:]) == 25.0
    assert demo.rejected_percent(task, [], []) == 0.0
    with pytest.raises(ValueError):  # one answer per problem, never a silent misalignment
        demo.rejected_percent(task, problems, references[:-1])


def test_per_seed_tables_show_every_run_and_survive_a_failed_one():
    from dupo_verl.demo.translation_tables import per_seed_markdown

    rates = {"rollouts": 64, "ok": 0.9, "no_answer": 0.0, "near_copy": 0.1, "wrong_language": 0.0, "partial_copy": 0.0,
             "rejected_first": 0.25, "rejected_last": 0.0, "chrf_vs_source_first": 0.3, "chrf_vs_source_last": 0.1,
             "reward_by_verdict": {"ok": 0.25, "near_copy": 0.6}}
    trained = {"seed": 1, "curve": [[0, 0.40], [4, 0.42], [8, 0.44], [12, 0.45]], "wall_s": 600.0,
               "detail": {"before": {"primal_chrf": 40.0}, "after": {"primal_chrf": 43.5, "primal_bleu": 12.0,
                                                                       "dual_chrf": 80.0, "primal_rejected": 2.5},
                          "shortcuts": {"overall": rates}, "guards": {"reward": 0.25, "gold_acc": 0.33}}}
    failed = {"seed": 2, "curve": [], "wall_s": None, "detail": {"before": {"primal_chrf": 41.0}}}
    text = per_seed_markdown({"methods": {"dupo": {"runs": [trained, failed]}}})
    assert "| dupo | 1 | 40.0 | 43.5 | 3.5 | 40.0 | 43.7 | 3.7 | 45.0 | 12.0 | 80.0 | 2.5 | 600 |" in text
    assert "| dupo | 2 | 41.0 | - | - | - | - | - | - | - | - | - | - |" in text
    assert "| dupo s1 | 64 | 90.00 | 0.00 | 10.00 | 0.00 | 0.00 | 25.00 | 0.00 | 0.300 | 0.100 | 0.250 | 0.330 | 0.250 / - / 0.600 / - |" in text
    assert "dupo s2" not in text  # no rollouts measured: no row, never a crash
    assert per_seed_markdown({"methods": {}}).count("\n|---|") == 2  # headers only


# ---------------------------------------------------------------------------------------------
# What the reward pays each shortcut answer (real scorer, a tiny real model as the dual)
# ---------------------------------------------------------------------------------------------


def test_shortcut_answers_are_built_from_the_pair():
    from dupo_verl.demo.translation_incentive import ANSWER_KINDS, shortcut_answers

    answers = shortcut_answers("one two three four", "a b c d e f")
    assert tuple(answers) == ANSWER_KINDS
    assert answers == {"reference": "a b c d e f", "copy": "one two three four", "half_copy": "a b c three four",
                       "truncated": "a b c"}
    assert shortcut_answers("x", "y")["half_copy"] == "y x"  # one-word texts still give an answer


def test_incentive_scores_every_answer_with_the_real_scorer(guard_task_and_pairs, tmp_path):
    from dupo_verl.demo.tiny_lm import build_tiny_lm
    from dupo_verl.demo.translation_incentive import ANSWER_KINDS, format_incentive, shortcut_incentive
    from dupo_verl.scoring import DualOptions

    task, pairs = guard_task_and_pairs
    pairs = sorted(pairs, key=lambda pair: -len(pair[0]))[:3]
    corpus = [s + " " + r for s, r in pairs]
    model = build_tiny_lm(tmp_path / "lm", corpus=corpus, vocab_size=300, hidden_size=64, num_layers=1, num_heads=2,
                          max_position_embeddings=256, seed=0)
    options = DualOptions(dual_samples=1, dual_temperature=0.0, dual_max_tokens=8, hybrid_weight=0.0)
    table = shortcut_incentive(model, task, pairs, demo.GUARDS_OFF, options)
    assert set(table) == {"guards on", "guards off"}
    for setting, kinds in table.items():
        assert tuple(kinds) == ANSWER_KINDS
        for kind, cell in kinds.items():
            assert cell["answers"] == 3 and 0.0 <= cell["reward"] <= 1.0 and 0.0 <= cell["rejected"] <= 1.0, (setting, kind)
        assert kinds["reference"]["rejected"] == 0.0 and kinds["truncated"]["rejected"] == 0.0
    assert table["guards on"]["copy"] == {"reward": 0.0, "rejected": 1.0, "answers": 3}  # the no-answer reward
    assert table["guards off"]["copy"]["rejected"] == 0.0 and table["guards off"]["half_copy"]["rejected"] == 0.0
    text = format_incentive(table)
    assert "| copy | " in text and "100 %" in text
    with pytest.raises(ValueError, match="no .* pairs"):
        shortcut_incentive(model, task, [], demo.GUARDS_OFF, options)


def test_recipe_round_trips_and_rejects_bad_shares():
    assert recipe.warm_recipe() == ""  # no recipe: warm starts made before recipes stay reusable
    assert recipe.warm_recipe(0.25) == "copy_through=0.25"  # the string the eighth session's warm starts carry
    assert recipe.warm_recipe(0.25, 0.1) == "copy_through=0.25,primal_copy=0.1"
    assert recipe.warm_recipe(primal_copy=0.1) == "primal_copy=0.1"
    for bad in (-0.1, 1.0, 3.0, float("nan")):
        with pytest.raises(ValueError, match="--warm-copy-through"):
            recipe.warm_recipe(bad)
        with pytest.raises(ValueError, match="--warm-primal-copy"):
            recipe.warm_recipe(0.2, bad)


@given(st.floats(0.0, 0.999), st.floats(0.0, 0.999))
def test_recipe_shares_read_back_what_was_written(copy_through, primal_copy):
    text = recipe.warm_recipe(copy_through, primal_copy)
    assert recipe.recipe_share(text, "copy_through") == pytest.approx(copy_through, rel=1e-5)
    assert recipe.recipe_share(text, "primal_copy") == pytest.approx(primal_copy, rel=1e-5)
    assert recipe.recipe_share(text, "other") == 0.0


def test_recipe_examples_teach_each_role_its_copy(guard_task_and_pairs, data):
    from dupo_verl.demo.examples import read_problems

    task, _ = guard_task_and_pairs
    problems = read_problems(data["warm"])
    sources = {p.duals[0].target for p in problems}
    extra = recipe.recipe_examples(task, problems, recipe.warm_recipe(0.5, 0.25), seed=3)
    assert len(extra["dual"]) == round(0.5 * len(problems)) and len(extra["primal"]) == round(0.25 * len(problems))
    for example in extra["dual"]:  # asked to translate English into English, the dual returns it unchanged
        assert example.kind == "dual" and example.target in sources
        prompt = example.messages[-1]["content"]
        assert "Dupish text into English" in prompt and prompt.endswith(example.target)
        assert task.score_reconstruction(example.dual, example.target) == pytest.approx(1.0)
    by_prompt = {p.primal.messages[-1]["content"]: p for p in problems}
    for example in extra["primal"]:  # the policy answers with the source sentence of its own prompt
        problem = by_prompt[example.messages[-1]["content"]]
        assert example.kind == "primal" and example.target == problem.duals[0].target != problem.primal.target
        assert task.reject_answer(example.target, [problem.duals[0].dual]) == "near_copy"
    again = recipe.recipe_examples(task, problems, recipe.warm_recipe(0.5, 0.25), seed=3)
    assert [e.target for e in again["primal"]] == [e.target for e in extra["primal"]]  # reproducible per seed
    assert recipe.recipe_examples(task, problems, "", seed=3) == {"primal": [], "dual": []}
    for option, value in (("--warm-copy-through", "1.5"), ("--warm-primal-copy", "-0.2")):
        proc = subprocess.run([sys.executable, "-m", "dupo_verl", "demo", "translation", "--output", "/tmp/x",
                               option, value], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and f"{option}: the share must be in [0, 1)" in proc.stderr
        assert "Traceback" not in proc.stderr
