"""`--merge-results`: runs recorded in an earlier results.json join a `--collect`'s tables only when
they were made with the same settings, at the same stage, from the same warm starts (through the
demo itself: tests/demo/test_continue.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dupo_verl.demo.merge_results import RecordedRuns, load_recorded_runs, with_recorded_runs
from dupo_verl.demo.results import RunRecord, write_results

KEYS = ("val_problems", "grpo")
SETTINGS = {"val_problems": 600, "grpo": {"steps": 24}}


def _run(method: str, seed: int, before: float = 0.4, stages: int = 1, after: float = 0.5) -> RunRecord:
    detail = {} if method == "warm_start" else {"stages": stages}
    return RunRecord(method, seed, before, 0.9, after, 0.9, curve=[(0, before), (24 * stages, after)],
                     dual_curve=[(0, 0.9)], detail=detail)


def _write(path: Path, records, config=SETTINGS) -> Path:
    write_results(path, config, records, {})
    return path


def test_recorded_runs_round_trip_through_results_json(tmp_path):
    runs = [_run("warm_start", 0), _run("oracle", 0), _run("oracle", 1, before=0.3)]
    loaded = load_recorded_runs(_write(tmp_path / "r.json", runs), SETTINGS, KEYS, stage=1)
    assert sorted((r.method, r.seed) for r in loaded.records) == [("oracle", 0), ("oracle", 1), ("warm_start", 0)]
    oracle1 = next(r for r in loaded.records if (r.method, r.seed) == ("oracle", 1))
    assert oracle1 == _run("oracle", 1, before=0.3) and oracle1.curve == [(0, 0.3), (24, 0.5)]


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read it as JSON"),
    ("[]", "not a demo results.json"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": "x"}}}), r"methods\.oracle\.runs must be a list"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [{"method": "oracle"}]}}}),
     r"runs\[0\]: missing seed, primal_before, dual_before"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [
        {"method": "oracle", "seed": 0, "primal_before": 0.4, "dual_before": 0.9, "colour": 1}]}}}),
     r"unknown field\(s\) \['colour'\]"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [
        {"method": "oracle", "seed": 0, "primal_before": "NaN", "dual_before": 0.9}]}}}), "must be finite"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [
        {"method": "oracle", "seed": "zero", "primal_before": 0.4, "dual_before": 0.9}]}}}), "unreadable seed"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [
        {"method": "oracle", "seed": 0, "primal_before": 0.4, "dual_before": 0.9, "curve": [[0]]}]}}}),
     "unreadable seed, curve"),
    (json.dumps({"config": SETTINGS, "methods": {"oracle": {"runs": [
        {"method": "dupo", "seed": 0, "primal_before": 0.4, "dual_before": 0.9}]}}}), "is a 'dupo' run"),
])
def test_a_bad_results_file_is_one_clear_error_naming_the_place(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_recorded_runs(path, SETTINGS, KEYS, stage=1)
    assert str(err.value).startswith(f"--merge-results {path}")
    with pytest.raises(ValueError, match="cannot read"):
        load_recorded_runs(tmp_path / "absent.json", SETTINGS, KEYS, stage=1)


def test_a_huge_deep_or_special_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    import dupo_verl.demo.merge_results as merge

    monkeypatch.setattr(merge, "MAX_RESULTS_BYTES", 1000)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"config": SETTINGS, "methods": {}, "pad": "x" * 2000}))
    with pytest.raises(ValueError, match=r"cannot read it as JSON \(\d+ bytes, more than the 1000"):
        load_recorded_runs(huge, SETTINGS, KEYS, stage=1)
    monkeypatch.undo()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="cannot read it as JSON"):
        load_recorded_runs(deep, SETTINGS, KEYS, stage=1)
    with pytest.raises(ValueError, match="not a regular file"):
        load_recorded_runs(tmp_path, SETTINGS, KEYS, stage=1)


def test_other_settings_or_another_stage_are_refused(tmp_path):
    path = _write(tmp_path / "r.json", [_run("oracle", 0, stages=2)], config={**SETTINGS, "val_problems": 300})
    with pytest.raises(ValueError, match="val_problems was 300 there and is 600 here"):
        load_recorded_runs(path, SETTINGS, KEYS, stage=2)
    path = _write(tmp_path / "r.json", [_run("oracle", 0, stages=2)])
    with pytest.raises(ValueError, match="oracle seed 0 ran 2 stage.* this output is stage 3"):
        load_recorded_runs(path, SETTINGS, KEYS, stage=3)
    assert len(load_recorded_runs(path, SETTINGS, KEYS, stage=2).records) == 1


def test_only_missing_runs_of_the_asked_methods_and_seeds_are_added(tmp_path):
    own = [_run("warm_start", 0), _run("dupo_ensemble", 0, after=0.6), _run("warm_start", 1, before=0.3)]
    recorded = RecordedRuns(tmp_path, (
        _run("warm_start", 0), _run("dupo_ensemble", 0, after=0.1),  # own run wins
        _run("oracle", 0), _run("oracle", 1, before=0.3),  # added
        _run("shuffled", 0),  # not asked for
        _run("oracle", 2, before=0.2),  # no run of seed 2 here to check its warm start
    ))
    lines = []
    merged = with_recorded_runs(own, [recorded], {"warm_start", "dupo_ensemble", "oracle"}, range(3), lines.append)
    assert merged[:3] == own
    assert [(r.method, r.seed) for r in merged[3:]] == [("oracle", 0), ("oracle", 1)]
    assert next(r for r in merged if r.method == "dupo_ensemble").primal_after == 0.6
    assert lines == ["--merge-results: added 2 recorded run(s); skipped 1: no run of its seed here to check its "
                     "warm start against; skipped 1: not asked for by --methods/--seeds; skipped 2: this output "
                     "has its own run"]


def test_a_run_from_another_warm_start_is_refused(tmp_path):
    own = [_run("warm_start", 0, before=0.425)]
    for other in (_run("oracle", 0, before=0.387), _run("shuffled", 0, before=0.387)):  # asked for or not
        with pytest.raises(ValueError, match="oracle|shuffled") as err:
            with_recorded_runs(own, [RecordedRuns(tmp_path, (other,))], {"oracle"}, range(1), lambda _: None)
        assert "started at held-out primal 0.3870 dual 0.9000" in str(err.value)
        assert "warm start scores 0.4250 0.9000: not the same warm start" in str(err.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["warm_start", "oracle", "dupo", "shuffled"]), st.integers(0, 3)),
                max_size=12),
       st.lists(st.tuples(st.sampled_from(["oracle", "dupo", "shuffled"]), st.integers(0, 3)), max_size=12))
def test_merging_never_duplicates_drops_or_invents_a_run(own_keys, recorded_keys):
    """Whatever is recorded: own runs are kept as they are, each (method, seed) at most once, every
    added run is one that was recorded, asked for, and whose seed has a run here."""
    own = [_run(m, s, before=0.1 * s) for m, s in dict.fromkeys(own_keys)]
    recorded = [_run(m, s, before=0.1 * s, after=0.9) for m, s in recorded_keys]
    asked, seeds = {"oracle", "dupo", "warm_start"}, range(3)
    merged = with_recorded_runs(own, [RecordedRuns(Path("r"), tuple(recorded))], asked, seeds, lambda _: None)
    keys = [(r.method, r.seed) for r in merged]
    assert merged[:len(own)] == own and len(keys) == len(set(keys))
    own_seeds = {r.seed for r in own}
    for run in merged[len(own):]:
        assert run.primal_after == 0.9 and run.method in asked and run.seed in seeds and run.seed in own_seeds
    expected = {(m, s) for m, s in recorded_keys if m in asked and s in seeds and s in own_seeds} - set(own_keys)
    assert set(keys) - set((r.method, r.seed) for r in own) == expected
