"""`--continue-from`: more GRPO steps start from each run's final checkpoint and join both stages.

main_ppo itself is replaced by a job that writes what verl writes (a final HF checkpoint, rollout
dumps, validation metrics): the real one takes minutes and runs in the e2e tier's demo smoke test.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from dupo_verl.demo import stages
from dupo_verl.demo import two_sum_demo as demo
from dupo_verl.demo.launch import JobResult
from dupo_verl.demo.rollouts import agreement_over_training
from dupo_verl.demo.two_sum_data import DUAL_SOURCE, PRIMAL_SOURCE
from dupo_verl.tasks import get_task


def _override(argv, key: str) -> str:
    values = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] == key]
    assert len(values) == 1, f"{key} appears {len(values)} times"
    return values[0]


class FakeMainPPO:
    """Writes a run's outputs like verl does and records each command; a run that starts from a
    checkpoint is stage 2 (its accuracy, rewards and wall time differ from stage 1's)."""

    def __init__(self, model_source: Path, steps: int):
        self.model_source, self.steps, self.commands = model_source, steps, []

    def __call__(self, argv, cwd, env, timeout_s, log_path, metrics_path):
        self.commands.append(list(argv))
        overrides = argv[3:]
        run_dir = Path(cwd)
        final = run_dir / "checkpoints" / f"global_step_{self.steps}" / "actor" / "huggingface"
        shutil.copytree(self.model_source, final)
        rollouts = Path(_override(overrides, "trainer.rollout_data_dir"))
        rollouts.mkdir(parents=True)
        stage = 2 if "checkpoints" in _override(overrides, "actor_rollout_ref.model.path") else 1
        # stage 1 pays one wrong answer (agreement 1/2), stage 2 pays only right ones (agreement 1)
        first = {"input": "user\n17+25=\nassistant\n", "output": "42", "score": 1.0}
        second = {"input": "user\n17+25=\nassistant\n", "output": "32" if stage == 1 else "42", "score": 1.0}
        for step in range(1, self.steps + 1):
            (rollouts / f"{step}.jsonl").write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
        steps = {
            s: {f"val-core/{PRIMAL_SOURCE}/acc/mean@1": 0.4 + 0.1 * stage * s / self.steps,
                f"val-core/{DUAL_SOURCE}/acc/mean@1": 0.9}
            for s in (0, self.steps)
        }
        for s in range(1, self.steps + 1):  # an anchored judge's disagreement, logged every step
            steps.setdefault(s, {})["dupo/judge_disagreement/mean"] = 0.1 * stage
        log_path.write_text("fake main_ppo\n")
        return JobResult(rc=0, timed_out=False, wall_s=10.0 * stage, log_path=log_path, steps=steps)


@pytest.fixture
def fake_main_ppo(monkeypatch, digit_model):
    fake = FakeMainPPO(digit_model, steps=4)
    monkeypatch.setattr(stages, "run_job", fake)
    monkeypatch.setattr(demo.ppo, "cpu_support_available", lambda: True)
    evaluated = []

    def heldout(model_dir, *a):
        evaluated.append(Path(model_dir))
        return (0.7, 0.95) if "checkpoints" in str(model_dir) else (0.4, 0.9)

    monkeypatch.setattr(demo, "_heldout_accuracy", heldout)
    fake.evaluated = evaluated
    return fake


def _config(out: Path, **kw) -> demo.DemoConfig:
    settings = {"methods": ("warm_start", "dupo", "dupo_frozen"), "operand_max": 19, "val_problems": 40,
                "device": "cpu", "grpo": demo.ppo.GRPOSettings(steps=4, test_freq=4), **kw}
    return demo.DemoConfig(output=out, **settings)


def test_joined_curve_numbers_the_second_stage_on():
    assert stages.joined_curve([(0, 0.4), (24, 0.5)], [(0, 0.5), (8, 0.55), (24, 0.6)]) == [
        (0, 0.4), (24, 0.5), (32, 0.55), (48, 0.6)]
    assert stages.joined_curve([], [(0, 0.4)]) == [(0, 0.4)]


def test_agreement_over_stages_numbers_steps_on(tmp_path):
    task = get_task("two_sum")
    for name, reply in (("a", "32"), ("b", "42")):
        (tmp_path / name).mkdir()
        for step in (1, 2):
            rec = {"input": "user\n17+25=\nassistant\n", "output": reply, "score": 1.0}
            (tmp_path / name / f"{step}.jsonl").write_text(json.dumps(rec) + "\n")
    out = agreement_over_training([tmp_path / "a", tmp_path / "b"], task)
    assert sorted(out["per_step"]) == [1, 2, 3, 4]
    assert [out["per_step"][s]["agreement"] for s in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    assert out["overall"]["samples"] == 4 and out["overall"]["precision"] == 0.5


def test_continued_runs_start_from_the_final_checkpoints_and_join_both_stages(tmp_path, fake_main_ppo, save_warm_start,
                                                                              monkeypatch):
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    first = _config(first_out, resume=True)  # resume: reuse the saved warm start
    save_warm_start(first_out / "seed0", first, seed=0)
    demo.run_demo(first, log=lambda _: None)
    warm_dir = first_out / "seed0" / "warm_start"
    stage1 = {Path(_override(c, "trainer.default_local_dir")).parent.name: c for c in fake_main_ppo.commands}
    assert _override(stage1["dupo"], "actor_rollout_ref.model.path") == str(warm_dir)

    fake_main_ppo.commands.clear()
    fake_main_ppo.evaluated.clear()
    monkeypatch.chdir(tmp_path)  # PREV given relative to the working directory
    results = demo.run_demo(_config(second_out, continue_from=Path("first")), log=lambda _: None)
    assert json.loads((second_out / "config.json").read_text())["continue_from"] == str(first_out.resolve())
    stage2 = {Path(_override(c, "trainer.default_local_dir")).parent.name: c for c in fake_main_ppo.commands}
    assert sorted(stage2) == ["dupo", "dupo_frozen"]
    for method, argv in stage2.items():
        start = first_out / "seed0" / method / "checkpoints" / "global_step_4" / "actor" / "huggingface"
        assert _override(argv, "actor_rollout_ref.model.path") == str(start)  # the policy goes on
        assert _override(argv, "data.seed") != _override(stage1[method], "data.seed")  # new prompt order
    assert _override(stage2["dupo_frozen"], "reward.reward_model.model_path") == str(warm_dir)  # judge stays frozen
    assert not (second_out / "seed0" / "warm_start").exists()  # the warm start is the earlier output's

    dupo = json.loads((second_out / "seed0" / "dupo" / "run.json").read_text())
    assert dupo["primal_before"] == 0.4 and dupo["primal_after"] == 0.7  # before = the warm start
    assert [p[0] for p in dupo["curve"]] == [0, 4, 8]
    assert [p[1] for p in dupo["curve"]] == pytest.approx([0.4, 0.5, 0.6])
    assert dupo["wall_s"] == 10.0 + 20.0  # both stages
    assert dupo["detail"]["stages"] == 2 and sorted(dupo["detail"]["agreement_per_step"]) == [
        str(s) for s in range(1, 9)]
    assert dupo["agreement"] == 0.75  # stage 1 at 1/2, stage 2 at 1
    # per 8 steps over both stages: reward vs truth; one judge cannot disagree with itself ("-")
    assert dupo["detail"]["judge_disagreement_per_step"] == []
    window = dupo["detail"]["reward_vs_truth_per_window"]["1-8"]
    assert window["precision"] == 0.75 and window["recall"] == 1.0 and window["samples"] == 16
    table = (second_out / "results.md").read_text()
    assert "| dupo | 1-8 | 0.750 | 1.000 | - |" in table
    # the long-run targets at both stage ends, from the joined curves (0.4 -> 0.5 -> 0.6)
    assert "Long-run targets at each stage end (4, 8 GRPO steps)" in table
    targets = results["long_run_targets"]
    assert targets["checkpoints"] == [4, 8]
    assert targets["methods"]["dupo"]["final_gain"][8] == pytest.approx(20.0)
    assert results["methods"]["dupo"]["primal_accuracy"]["per_seed"] == [0.7]
    assert results["methods"]["warm_start"]["primal_accuracy"]["per_seed"] == [0.4]

    fake_main_ppo.commands.clear()  # a third stage continues the second, whose warm start is the first's
    monkeypatch.chdir(second_out)  # elsewhere: the second's PREV is found all the same
    demo.run_demo(_config(tmp_path / "third", continue_from=second_out), log=lambda _: None)
    stage3 = {Path(_override(c, "trainer.default_local_dir")).parent.name: c for c in fake_main_ppo.commands}
    for method, argv in stage3.items():
        start = second_out / "seed0" / method / "checkpoints" / "global_step_4" / "actor" / "huggingface"
        assert _override(argv, "actor_rollout_ref.model.path") == str(start)
    assert _override(stage3["dupo_frozen"], "reward.reward_model.model_path") == str(warm_dir)
    assert len({_override(c["dupo"], "data.seed") for c in (stage1, stage2, stage3)}) == 3
    third = json.loads((tmp_path / "third" / "seed0" / "dupo" / "run.json").read_text())
    assert [p[0] for p in third["curve"]] == [0, 4, 8, 12] and third["detail"]["stages"] == 3
    assert len(third["detail"]["rollout_dirs"]) == 3 and third["primal_before"] == 0.4


def test_continue_from_refuses_what_it_cannot_continue(tmp_path, fake_main_ppo, save_warm_start):
    first_out = tmp_path / "first"
    first = _config(first_out, methods=("dupo",), resume=True)
    with pytest.raises(ValueError, match="config.json"):
        demo.run_demo(_config(tmp_path / "x", continue_from=first_out), log=lambda _: None)
    save_warm_start(first_out / "seed0", first, seed=0)
    demo.run_demo(first, log=lambda _: None)
    with pytest.raises(ValueError, match="operand_max was 19"):
        demo.run_demo(replace(_config(tmp_path / "y", continue_from=first_out), operand_max=29), log=lambda _: None)
    runs_before = len(fake_main_ppo.commands)
    with pytest.raises(ValueError, match=r"no finished run to continue in .*dupo_frozen.*no warm start .*seed1"):
        demo.run_demo(_config(tmp_path / "z", continue_from=first_out, seeds=2), log=lambda _: None)
    assert len(fake_main_ppo.commands) == runs_before  # everything is checked before the first run

    with pytest.raises(ValueError, match="nothing to collect"):  # an output that holds no run of its own
        demo.run_demo(_config(tmp_path / "c", continue_from=first_out, seeds=2, collect=True), log=lambda _: None)
    assert not (tmp_path / "c").exists()
    (tmp_path / "c" / "seed0" / "dupo").mkdir(parents=True)  # an unfinished run: its log, no run.json
    (tmp_path / "c" / "seed0" / "dupo" / "main_ppo.log").write_text("killed\n")
    collected = demo.run_demo(_config(tmp_path / "c", continue_from=first_out, seeds=2, collect=True),
                              log=lambda _: None)
    assert collected["missing"] == ["seed0/dupo", "seed0/dupo_frozen", "seed1/warm_start"]
    assert len(fake_main_ppo.commands) == runs_before  # collect trains nothing
    with pytest.raises(ValueError, match="another output folder"):
        _config(first_out, continue_from=first_out).validate()
    config = json.loads((first_out / "config.json").read_text())  # two outputs that continue each other
    (first_out / "config.json").write_text(json.dumps({**config, "continue_from": str(tmp_path / "loop")}))
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "config.json").write_text(json.dumps({**config, "continue_from": str(first_out)}))
    with pytest.raises(ValueError, match="in a loop"):
        demo.run_demo(_config(tmp_path / "w", continue_from=first_out), log=lambda _: None)


def test_runs_saved_before_the_judge_measures_get_them_from_their_dumps_and_logs(tmp_path, fake_main_ppo,
                                                                                save_warm_start):
    """A `--collect` of runs recorded before per-window reward vs truth and per-step disagreement
    existed fills both from the rollout dumps and verl's logs of every stage."""
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    methods = {"methods": ("warm_start", "dupo", "dupo_anchored")}
    first = _config(first_out, resume=True, **methods)
    save_warm_start(first_out / "seed0", first, seed=0)
    demo.run_demo(first, log=lambda _: None)
    demo.run_demo(_config(second_out, continue_from=first_out, **methods), log=lambda _: None)
    fresh = json.loads((second_out / "seed0" / "dupo_anchored" / "run.json").read_text())["detail"]
    assert [p[0] for p in fresh["judge_disagreement_per_step"]] == list(range(1, 9))  # joined over both stages
    assert [p[1] for p in fresh["judge_disagreement_per_step"]] == pytest.approx([0.1] * 4 + [0.2] * 4)
    run_json = second_out / "seed0" / "dupo_anchored" / "run.json"
    saved = json.loads(run_json.read_text())
    for key in ("reward_vs_truth_per_window", "judge_disagreement_per_step"):
        del saved["detail"][key]
    run_json.write_text(json.dumps(saved))
    for stage_out, value in ((first_out, 0.1), (second_out, 0.2)):  # what verl's file logger wrote
        lines = [json.dumps({"step": s, "data": {"dupo/judge_disagreement/mean": value}}) for s in range(1, 5)]
        (stage_out / "seed0" / "dupo_anchored" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    fake_main_ppo.commands.clear()
    demo.run_demo(_config(second_out, continue_from=first_out, collect=True, **methods), log=lambda _: None)
    assert fake_main_ppo.commands == []
    # both stages' disagreement (0.1 then 0.2, mean 0.15) and the window's precision (3 of 4 paid right)
    assert "| dupo_anchored | 1-8 | 0.750 | 1.000 | 0.150 |" in (second_out / "results.md").read_text()


def test_a_continued_output_is_only_resumed_or_collected_as_the_continuation_it_is(tmp_path, fake_main_ppo,
                                                                                  save_warm_start):
    """Collecting a 48-step output without its --continue-from found none of its runs and wrote empty
    tables over its config.json and results (twelfth session): now refused, and nothing is written."""
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    first = _config(first_out, methods=("warm_start", "dupo"), resume=True)
    save_warm_start(first_out / "seed0", first, seed=0)
    demo.run_demo(first, log=lambda _: None)
    demo.run_demo(_config(second_out, methods=("warm_start", "dupo"), continue_from=first_out), log=lambda _: None)
    kept = {name: (second_out / name).read_bytes() for name in ("config.json", "results.json", "results.md")}
    runs = len(fake_main_ppo.commands)

    for flag in ("collect", "resume"):
        with pytest.raises(ValueError, match=rf"made with --continue-from {first_out.resolve()}; --{flag} it with"):
            demo.run_demo(_config(second_out, methods=("warm_start", "dupo"), **{flag: True}), log=lambda _: None)
        shutil.copytree(first_out, tmp_path / "other", dirs_exist_ok=True)  # a valid PREV, not this output's
        with pytest.raises(ValueError, match=rf"made with --continue-from {first_out.resolve()}; --{flag} it with"):
            demo.run_demo(_config(second_out, methods=("warm_start", "dupo"), continue_from=tmp_path / "other",
                                  **{flag: True}), log=lambda _: None)
    with pytest.raises(ValueError, match=r"made without --continue-from; --resume it without"):
        demo.run_demo(_config(first_out, methods=("warm_start", "dupo"), resume=True, continue_from=second_out),
                      log=lambda _: None)
    assert {name: (second_out / name).read_bytes() for name in kept} == kept
    assert len(fake_main_ppo.commands) == runs

    collected = demo.run_demo(_config(second_out, methods=("warm_start", "dupo"), continue_from=first_out,
                                      collect=True), log=lambda _: None)
    assert collected["missing"] == [] and len(fake_main_ppo.commands) == runs
    assert collected["methods"]["dupo"]["primal_accuracy"]["per_seed"] == [0.7]


@pytest.mark.parametrize("content", ["not json {", "[1, 2]", '{"continue_from": 5}', '{"continue_from": ["a"]}', ""])
def test_a_damaged_config_of_the_output_is_one_clear_line_or_ignored(tmp_path, content):
    """The recorded continue_from is read from a file a user may have edited: unreadable JSON or a
    non-object is ignored (nothing recorded to contradict), a wrong type is named, never a traceback."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text(content)
    config = _config(out, collect=True)
    if content.startswith("{"):
        with pytest.raises(ValueError, match=r"config.json: continue_from must be a folder path or null, got"):
            stages.refuse_other_stage(out, config)
    else:
        assert stages.refuse_other_stage(out, config) is None
    assert (out / "config.json").read_text() == content  # never rewritten by the check
    assert stages.refuse_other_stage(tmp_path / "missing", config) is None


def test_collect_merges_an_earlier_outputs_runs_into_its_tables(tmp_path, fake_main_ppo, save_warm_start):
    """Through the demo: an oracle trained into one output (its folder then lost, its results.json
    kept) joins the tables of another output that trained dupo from the same warm start."""
    kept = tmp_path / "kept"
    first = _config(tmp_path / "first", methods=("warm_start", "oracle"), resume=True)
    save_warm_start(tmp_path / "first" / "seed0", first, seed=0)
    demo.run_demo(first, log=lambda _: None)
    kept.mkdir()
    shutil.copy(tmp_path / "first" / "results.json", kept / "results.json")
    shutil.rmtree(tmp_path / "first")

    second = _config(tmp_path / "second", methods=("warm_start", "dupo"), resume=True)
    save_warm_start(tmp_path / "second" / "seed0", second, seed=0)
    demo.run_demo(second, log=lambda _: None)
    runs_before = len(fake_main_ppo.commands)
    with pytest.raises(ValueError, match="needs --collect"):
        replace(second, merge_results=(kept / "results.json",)).validate()

    lines = []
    collect = replace(second, methods=("warm_start", "dupo", "oracle"), collect=True,
                      merge_results=(kept / "results.json",))
    results = demo.run_demo(collect, log=lines.append)
    assert len(fake_main_ppo.commands) == runs_before  # nothing trained
    assert "--merge-results: added 1 recorded run(s); skipped 1: this output has its own run" in lines
    assert results["methods"]["oracle"]["seeds"] == [0] and results["missing"] == ["seed0/oracle"]
    assert "| oracle |" in (tmp_path / "second" / "results.md").read_text()
    assert results["long_run_targets"]["methods"]["dupo"]["smoothed_share"][4] == pytest.approx(1.0)  # both 0.4 -> 0.5

    recorded = json.loads((kept / "results.json").read_text())
    recorded["config"]["grpo"]["lr"] = 1.0
    (kept / "other.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="grpo was .* its runs were made with other settings"):
        demo.run_demo(replace(collect, merge_results=(kept / "other.json",)), log=lambda _: None)
