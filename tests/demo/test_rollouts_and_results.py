"""Reward-vs-truth agreement from verl rollout dumps, results.json, the table and the plot."""

from __future__ import annotations

import json
import math

import pytest

from dupo_verl.demo.results import RunRecord, format_table, plot_curves, summarize, val_curve, write_results
from dupo_verl.demo.rollouts import agreement_over_training, step_agreement, true_sum
from dupo_verl.tasks import get_task

TASK = get_task("two_sum")


def _record(a, b, reply, score, planted="999"):
    # the shape verl's V1 trainer dumps: the prompt decoded without special tokens, planted gts
    return {"input": f"user\n{a}+{b}=\nassistant\n", "output": reply, "gts": planted, "score": score, "step": 1}


def test_true_sum_reads_the_operands():
    assert true_sum("user\n12+35=\nassistant\n") == 47
    assert true_sum("no pair here") is None


def test_step_agreement_counts():
    records = [
        _record(1, 2, "3", 1.0),  # right, rewarded
        _record(1, 2, "4", 0.0),  # wrong, not rewarded
        _record(5, 5, "10", 0.0),  # right, missed
        _record(5, 5, "11", 1.0),  # wrong, rewarded
        {"input": "garbage", "output": "1", "score": 1.0},  # counted as skipped
        _record(2, 2, "4", "n/a"),  # unreadable score: skipped
    ]
    s = step_agreement(records, TASK)
    assert s["samples"] == 4 and s["skipped"] == 2
    assert s["agreement"] == 0.5 and s["reward_rate"] == 0.5 and s["true_accuracy"] == 0.5
    assert s["precision"] == 0.5 and s["recall"] == 0.5


def test_agreement_over_training(tmp_path):
    (tmp_path / "1.jsonl").write_text("\n".join(json.dumps(_record(1, 1, "2", 1.0)) for _ in range(3)) + "\n")
    (tmp_path / "2.jsonl").write_text(json.dumps(_record(1, 1, "3", 1.0)) + "\nnot json\n")
    (tmp_path / "notes.jsonl").write_text("ignored")
    out = agreement_over_training(tmp_path, TASK)
    assert sorted(out["per_step"]) == [1, 2]
    assert out["overall"]["samples"] == 4
    assert out["overall"]["agreement"] == 0.75
    assert agreement_over_training(tmp_path / "missing", TASK)["overall"] == {"samples": 0}


def test_wrong_answers_paid_for_are_counted_by_offset(tmp_path):
    """Precision, recall and the offsets of false positives over the run (carry slips show as +-10)."""
    step1 = [_record(17, 25, "52", 1.0), _record(17, 25, "32", 1.0), _record(17, 25, "42", 1.0),
             _record(17, 25, "43", 0.0), _record(17, 25, "x", 1.0)]
    step2 = [_record(38, 4, "52", 1.0), _record(38, 4, "42", 0.0)]
    (tmp_path / "1.jsonl").write_text("\n".join(json.dumps(r) for r in step1) + "\n")
    (tmp_path / "2.jsonl").write_text("\n".join(json.dumps(r) for r in step2) + "\n")
    overall = agreement_over_training(tmp_path, TASK)["overall"]
    assert overall["false_positive_offsets"] == {"+10": 2, "-10": 1, "other": 1}
    assert overall["precision"] == 1 / 5  # one right answer among five paid
    assert overall["recall"] == 1 / 2  # the right answer of step 2 was not paid


def test_val_curve_reads_verl_validation_names():
    steps = {
        0: {"val-core/two_sum/primal/acc/mean@1": 0.4, "val-core/two_sum/dual/acc/mean@1": 0.8},
        3: {"critic/score/mean": 0.5},
        5: {"val-core/two_sum/primal/reward/mean@1": 0.55},
        10: {"val-aux/two_sum/primal/score/mean@1": 0.6, "val-core/two_sum/primal/acc/mean@1": float("nan")},
    }
    assert val_curve(steps, "two_sum/primal") == [(0, 0.4), (5, 0.55), (10, 0.6)]
    assert val_curve(steps, "two_sum/dual") == [(0, 0.8)]


def _records():
    out = []
    for seed, (dupo_after, oracle_after, shuffled_after) in enumerate([(0.6, 0.8, 0.4), (0.7, 0.9, 0.45)]):
        out.append(RunRecord("warm_start", seed, 0.45, 0.85))
        for method, after in (("dupo", dupo_after), ("oracle", oracle_after), ("shuffled", shuffled_after)):
            out.append(RunRecord(method, seed, 0.45, 0.85, primal_after=after, dual_after=0.8,
                                 curve=[(0, 0.45), (5, (0.45 + after) / 2), (10, after)], agreement=0.9))
    return out


def test_summary_table_and_results(tmp_path):
    records = _records()
    s = summarize(records)
    assert list(s) == ["warm_start", "dupo", "oracle", "shuffled"]
    assert s["warm_start"]["primal_accuracy"]["per_seed"] == [0.45, 0.45]
    assert math.isclose(s["dupo"]["primal_accuracy"]["mean"], 0.65)
    assert math.isclose(s["oracle"]["primal_accuracy"]["mean"], 0.85)
    assert s["dupo"]["curves"]["1"][-1] == (10, 0.7)
    table = format_table(records)
    assert "| dupo | 2 |  45.0 |  65.0 | +20.0 |" in table
    assert "| warm_start | 2 |  45.0 |  45.0 | +0.0 |" in table
    data = write_results(tmp_path / "results.json", {"seeds": 2}, records, {"timings": {"total_s": 1.0}})
    assert json.loads((tmp_path / "results.json").read_text())["methods"]["dupo"]["primal_accuracy"]["mean"] == \
        data["methods"]["dupo"]["primal_accuracy"]["mean"]


def test_plot_is_a_png(tmp_path):
    path = plot_curves(_records(), tmp_path / "plot.png", total_steps=10)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_per_seed_table():
    from dupo_verl.demo.results import format_per_seed

    table = format_per_seed(_records()).splitlines()
    assert table[0] == "| method | seed 0 | seed 1 | mean |"
    assert table[3] == "| dupo |  60.0 |  70.0 |  65.0 |"


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def test_plot_draws_the_warm_start_beside_every_method_and_a_readable_y_axis():
    """Without the `warm_start` control the runs' own starting point is drawn; the y-axis holds it and the
    curves with a few points to spare, and never narrows to the 2-point span of a flat run."""
    import matplotlib.pyplot as plt

    from dupo_verl.demo.results import Y_MIN_SPAN, Y_PAD, draw_curves

    runs = [RunRecord("dupo_ensemble", seed, before, 0.98, primal_after=after,
                      curve=[(0, before), (8, before + 0.005), (24, after)])
            for seed, before, after in ((0, 0.577, 0.587), (1, 0.571, 0.583))]
    fig = draw_curves(runs, total_steps=24)
    try:
        ax = fig.axes[0]
        lines = _lines_by_label(ax)
        warm = lines["warm_start (no RL): 57.4%"]
        assert list(warm.get_xdata()) == [0, 24]
        assert [round(y, 6) for y in warm.get_ydata()] == [57.4, 57.4]  # the mean of the two seeds' starts
        assert warm.get_linestyle() == "--"
        assert list(lines["dupo_ensemble (n=2)"].get_xdata()) == [0, 8, 24]
        low, high = ax.get_ylim()
        assert high - low >= Y_MIN_SPAN
        assert low <= 57.1 - Y_PAD and high >= 58.7 + Y_PAD  # every point drawn, with context
    finally:
        plt.close(fig)


def test_plot_y_axis_pads_wide_data_and_stays_within_0_100():
    from dupo_verl.demo.results import y_limits

    assert y_limits([40.0, 70.0]) == (35.0, 75.0)
    assert y_limits([50.0, 51.0]) == (40.5, 60.5)
    assert y_limits([1.0, 3.0]) == (0.0, 20.0)  # shifted up, not cut
    assert y_limits([99.0, 100.0]) == (80.0, 100.0)
    assert y_limits([0.0, 100.0]) == (0.0, 100.0)


def test_plot_with_the_control_draws_one_warm_start_line(tmp_path):
    import matplotlib.pyplot as plt

    from dupo_verl.demo.results import draw_curves

    fig = draw_curves(_records(), total_steps=10)
    try:
        labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
        assert labels == ["warm_start (no RL): 45.0%", "dupo (n=2)", "oracle (n=2)", "shuffled (n=2)"]
        assert fig.axes[0].get_ylim()[1] >= 90 + 5  # the oracle's best seed, padded
    finally:
        plt.close(fig)


def test_closing_lines_say_what_was_gained():
    from dupo_verl.demo.results import closing_lines

    records = [r for r in _records() if r.method != "shuffled"]
    records.append(RunRecord("dupo_ensemble", 0, 0.44, 0.98, primal_after=0.559, curve=[(0, 0.44), (24, 0.559)]))
    records.append(RunRecord("dupo_ensemble", 1, 0.44, 0.98, primal_after=0.559, curve=[(0, 0.44), (24, 0.559)]))
    lines = closing_lines(records, steps=99)
    assert lines == [
        "dupo: held-out accuracy 45.0% -> 65.0% (+20.0 points) in 10 GRPO steps, no labels, mean of 2 seeds; "
        "oracle +40.0 (50% of its gain)",
        "oracle: held-out accuracy 45.0% -> 85.0% (+40.0 points) in 10 GRPO steps, gold labels, mean of 2 seeds",
        "dupo_ensemble: held-out accuracy 44.0% -> 55.9% (+11.9 points) in 24 GRPO steps, no labels, mean of 2 "
        "seeds; oracle +40.0 (30% of its gain)",
    ]


def test_closing_lines_without_an_oracle_and_with_a_failed_run():
    from dupo_verl.demo.results import closing_lines

    ok = RunRecord("dupo_ensemble", 0, 0.44, 0.98, primal_after=0.40, curve=[(0, 0.44), (24, 0.40)])
    failed = RunRecord("dupo_ensemble", 1, 0.46, 0.98, primal_after=0.46, curve=[(0, 0.46), (8, 0.46)],
                       status="timed_out")
    warm = RunRecord("warm_start", 0, 0.44, 0.98)
    # the unfinished run (stopped at step 8) is no 24-step result: the line is over seed 0 alone
    assert closing_lines([warm, ok, failed], steps=24) == [
        "dupo_ensemble: held-out accuracy 44.0% -> 40.0% (-4.0 points) in 24 GRPO steps, no labels; "
        "not finished: seed 1: timed_out"]
    assert closing_lines([warm], steps=24) == []
    losing_oracle = [ok, RunRecord("oracle", 0, 0.44, 0.98, primal_after=0.43, curve=[(0, 0.44), (24, 0.43)])]
    assert closing_lines(losing_oracle, steps=24)[1].endswith("; oracle -1.0")  # no share of a loss


def test_an_unfinished_run_is_in_no_mean_and_named_in_every_table():
    """A run Ray killed at step 64 of 72 counted in the 72-step mean of 3 seeds (thirteenth session)."""
    from dupo_verl.demo.results import format_per_seed

    done = [RunRecord("dupo_ensemble", seed, 0.40, 0.98, primal_after=0.60, dual_after=0.90, agreement=0.99,
                      wall_s=100.0, curve=[(0, 0.40), (72, 0.60)]) for seed in (0, 2)]
    killed = RunRecord("dupo_ensemble", 1, 0.30, 0.97, primal_after=0.31, dual_after=0.50, agreement=0.50,
                       wall_s=900.0, curve=[(0, 0.30), (64, 0.31)], status="failed (rc=1)")
    summary = summarize([done[0], killed, done[1]])["dupo_ensemble"]
    assert summary["seeds"] == [0, 1, 2] and summary["status"] == ["ok", "failed (rc=1)", "ok"]
    for key in ("primal_accuracy", "primal_accuracy_before", "dual_accuracy", "reward_truth_agreement", "wall_s"):
        assert summary[key]["per_seed"][1] is None, key
    assert summary["primal_accuracy"]["mean"] == pytest.approx(0.60)
    assert summary["primal_accuracy_before"]["mean"] == pytest.approx(0.40)
    assert summary["wall_s"]["mean"] == pytest.approx(100.0)
    assert summary["runs"][1]["primal_after"] == 0.31, "the unfinished run's measurements are kept"
    assert "| dupo_ensemble | 2 of 3 |  40.0 |  60.0 | +20.0 |" in format_table([done[0], killed, done[1]])
    assert "|  60.0 | failed (rc=1) |  60.0 |  60.0 |" in format_per_seed([done[0], killed, done[1]])
    assert "| dupo_ensemble | 2 |" in format_table(done)

    from dupo_verl.demo.results import draw_curves

    fig = draw_curves([done[0], killed, done[1]], total_steps=72)
    try:
        ax = fig.axes[0]
        mean_line = next(line for line in ax.get_lines() if line.get_label() == "dupo_ensemble (n=2)")
        assert list(mean_line.get_xdata()) == [0, 72], "the mean reaches the end: the killed run is not in it"
        assert sum(line.get_linestyle() == ":" for line in ax.get_lines()) == 1, "the killed run drawn dotted"
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_judge_windows_table_groups_steps_by_8_and_skips_what_was_not_logged():
    from dupo_verl.demo.results import format_judge_windows, metric_curve

    steps = {0: {"x": 1.0}, 1: {"dupo/judge_disagreement/mean": 0.0}, 8: {"dupo/judge_disagreement/mean": 0.5},
             9: {"dupo/judge_disagreement/mean": float("nan")}, 16: {"dupo/judge_disagreement/mean": 1.0}}
    curve = metric_curve(steps, "dupo/judge_disagreement/mean")
    assert curve == [(1, 0.0), (8, 0.5), (16, 1.0)]  # NaN dropped
    anchored = [RunRecord("dupo_anchored", seed, 0.3, 0.9, primal_after=0.5, detail={
        "judge_disagreement_per_step": curve,
        "reward_vs_truth_per_window": {"1-8": {"precision": 0.8 + 0.1 * seed, "recall": 0.5},
                                       "9-16": {"precision": float("nan"), "recall": 0.25}}}) for seed in (0, 1)]
    plain = RunRecord("dupo", 0, 0.3, 0.9, primal_after=0.5,
                      detail={"reward_vs_truth_per_window": {"1-8": {"precision": 0.6, "recall": 0.7}}})
    failed = RunRecord("oracle", 0, 0.3, 0.9, status="failed (rc=1)",
                       detail={"reward_vs_truth_per_window": {"1-8": {"precision": 0.1, "recall": 0.1}}})
    table = format_judge_windows([RunRecord("warm_start", 0, 0.3, 0.9), *anchored, plain, failed]).splitlines()
    assert table[2:] == ["| dupo_anchored | 1-8 | 0.850 | 0.500 | 0.250 |",
                         "| dupo_anchored | 9-16 | - | 0.250 | 1.000 |",
                         "| dupo | 1-8 | 0.600 | 0.700 | - |"]


def _timed(method: str, seed: int, steps: list[float], gen: list[float], status: str = "ok") -> RunRecord:
    return RunRecord(method, seed, 0.3, 0.9, primal_after=0.5, status=status, detail={"seconds_per_step": {
        "step": list(enumerate(steps, 1)), "gen": list(enumerate(gen, 1))}})


def test_step_costs_are_medians_per_run_means_over_seeds_and_a_ratio_to_the_oracle():
    from dupo_verl.demo.results import format_step_costs

    records = [
        RunRecord("warm_start", 0, 0.3, 0.9),
        _timed("oracle", 0, [60.0, 10.0, 10.0, 12.0], [50.0, 4.0, 4.0, 4.0]),  # warm-up step 1: median ignores it
        _timed("oracle", 1, [14.0, 14.0, 14.0], [6.0, 6.0, 6.0]),
        _timed("dupo_anchored", 0, [15.0, 15.0, 16.0], [9.0, 9.0, 9.0]),
        _timed("dupo_anchored", 1, [99.0], [99.0], status="failed (rc=1)"),  # not counted
        RunRecord("dupo", 0, 0.3, 0.9, primal_after=0.5),  # saved before timings were kept: not listed
    ]
    table = format_step_costs(records).splitlines()
    assert table[2:] == ["| oracle | 2 | 12.5 | 5.0 | 1.00x |", "| dupo_anchored | 1 | 15.0 | 9.0 | 1.20x |"]
    without_oracle = format_step_costs([records[3]]).splitlines()
    assert without_oracle[2] == "| dupo_anchored | 1 | 15.0 | 9.0 | - |"


def test_old_runs_get_their_step_timings_from_every_stage_log(tmp_path):
    from dupo_verl.demo.two_sum_demo import refresh_judge_measures

    dirs = []
    for stage, offset in (("s24", 0.0), ("s48", 100.0)):
        run = tmp_path / stage / "dupo_anchored"
        (run / "rollouts").mkdir(parents=True)
        (run / "main_ppo.log").write_text("")
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "data": {"timing_s/step": offset + s, "timing_s/gen": offset + s / 2,
                                            "dupo/judge_disagreement/mean": 0.0}}) + "\n" for s in (1, 2)))
        dirs.append(str(run / "rollouts"))
    record = RunRecord("dupo_anchored", 0, 0.3, 0.9, primal_after=0.5,
                       detail={"rollout_dirs": dirs, "reward_vs_truth_per_window": {}})
    refresh_judge_measures([record], task=None)
    assert record.detail["seconds_per_step"]["step"] == [(1, 1.0), (2, 2.0), (3, 101.0), (4, 102.0)]
    assert record.detail["seconds_per_step"]["gen"][-1] == (4, 101.0)
    assert record.detail["judge_disagreement_per_step"] == [(1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0)]


def test_closing_lines_compare_with_the_oracle_on_the_same_seeds():
    """A 48-step output held one seed of the anchored judge beside two of the oracle: its line said
    160 % of the oracle's mean gain; on the same warm start it was 144 %."""
    from dupo_verl.demo.results import closing_lines

    def run(method, seed, before, after):
        return RunRecord(method, seed, before, 0.98, primal_after=after, curve=[(0, before), (48, after)])

    records = [run("oracle", 0, 0.387, 0.527), run("oracle", 1, 0.378, 0.490),
               run("dupo_ensemble_anchored", 0, 0.387, 0.589), run("dupo_frozen_ensemble", 0, 0.387, 0.512),
               run("dupo_frozen_ensemble", 1, 0.378, 0.495), run("dupo_likelihood", 2, 0.40, 0.45)]
    lines = {line.split(":")[0]: line for line in closing_lines(records, steps=48)}
    assert lines["dupo_ensemble_anchored"].endswith("; oracle +14.0 on the same seeds (144% of its gain)")
    assert lines["dupo_frozen_ensemble"].endswith("mean of 2 seeds; oracle +12.6 (96% of its gain)")
    assert lines["dupo_likelihood"].endswith("; no oracle on the same seeds")
