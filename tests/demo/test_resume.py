"""`--resume`: a warm start or finished run is reused only when it was made with the same settings."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dupo_verl.demo import stages
from dupo_verl.demo import two_sum_demo as demo
from dupo_verl.demo.results import RunRecord


def _config(tmp_path: Path, **kw) -> demo.DemoConfig:
    return demo.DemoConfig(output=tmp_path, **kw)


def test_warm_start_reused_only_with_the_same_settings(tmp_path, save_warm_start):
    config = _config(tmp_path)
    save_warm_start(tmp_path / "seed1", config, seed=1)
    reused = stages.reusable_warm_start(config, tmp_path / "seed1", 1)
    assert reused is not None and reused.steps == 7 and reused.model_dir == tmp_path / "seed1" / "warm_start"
    assert stages.reusable_warm_start(config, tmp_path / "seed1", 2) is None  # other seed
    other_lr = _config(tmp_path, warm=replace(config.warm, lr=5e-4))
    assert stages.reusable_warm_start(other_lr, tmp_path / "seed1", 1) is None
    bigger = _config(tmp_path, model=stages.ModelConfig(hidden_size=256, num_heads=8))
    assert stages.reusable_warm_start(bigger, tmp_path / "seed1", 1) is None
    assert stages.reusable_warm_start(config, tmp_path / "seed9", 9) is None  # nothing there


def test_finished_run_reused_only_with_the_same_overrides(tmp_path):
    record = RunRecord("dupo", 0, 0.3, 0.8, primal_after=0.45, curve=[(0, 0.3), (10, 0.4)],
                       detail={"overrides": ["a=1", "b=2"]})
    (tmp_path / "run.json").write_text(json.dumps(asdict(record)))
    again = stages.finished_run(tmp_path, ["a=1", "b=2"])
    assert again == record
    assert stages.finished_run(tmp_path, ["a=1", "b=3"]) is None
    failed = replace(record, status="failed (rc=1)")
    (tmp_path / "run.json").write_text(json.dumps(asdict(failed)))
    assert stages.finished_run(tmp_path, ["a=1", "b=2"]) is None


def test_collect_gathers_finished_work_and_lists_the_rest(tmp_path, monkeypatch, save_warm_start):
    """`--collect` trains nothing: results hold what the folder has, `missing` names the rest."""
    monkeypatch.setattr(demo, "_heldout_accuracy", lambda *a: (0.4, 0.9))
    monkeypatch.setattr(stages, "run_job", lambda *a, **k: pytest.fail("collect must not start main_ppo"))
    monkeypatch.setattr(demo, "warm_start", lambda *a, **k: pytest.fail("collect must not warm-start"))
    config = _config(tmp_path, methods=("warm_start", "dupo", "oracle"), seeds=2, operand_max=19,
                     val_problems=40, device="cpu", collect=True)
    save_warm_start(tmp_path / "seed0", config, seed=0)
    first = demo.run_demo(config, log=lambda _: None)
    assert first["missing"] == ["seed0/dupo", "seed0/oracle", "seed1/warm_start"]
    assert first["methods"]["warm_start"]["seeds"] == [0] and "dupo" not in first["methods"]

    argv = json.loads((tmp_path / "config.json").read_text())["main_ppo_overrides"]["dupo/seed0"]
    record = RunRecord("dupo", 0, 0.4, 0.9, primal_after=0.55, dual_after=0.9, curve=[(0, 0.4), (24, 0.55)],
                       detail={"overrides": argv})
    (tmp_path / "seed0" / "dupo").mkdir(parents=True, exist_ok=True)
    (tmp_path / "seed0" / "dupo" / "run.json").write_text(json.dumps(asdict(record)))
    second = demo.run_demo(config, log=lambda _: None)
    assert second["missing"] == ["seed0/oracle", "seed1/warm_start"]
    assert second["methods"]["dupo"]["primal_accuracy"]["per_seed"] == [0.55]
    dupo_rows = [line for line in (tmp_path / "results.md").read_text().splitlines() if line.startswith("| dupo ")]
    assert len(dupo_rows) == 4 and all("55.0" in line for line in dupo_rows[:2])  # the before/after tables
    assert "+15.0" in dupo_rows[2]  # the long-run targets: final gain over the step-0 validation
    assert dupo_rows[3] == "| dupo | - |"  # paired with the oracle: no oracle run to pair with yet


def test_a_warm_start_saved_before_newer_settings_is_reused_with_their_legacy_values(tmp_path, save_warm_start):
    """warm_start.json files written before `dual_min` / `primal_eval_every` existed lack them; they were made
    as with None, so `--warm-dual-min 0 --warm-primal-eval-every 0` reuses them and the defaults do not."""
    legacy = _config(tmp_path, warm=replace(demo.WarmStartConfig(), dual_min=None, primal_eval_every=None))
    save_warm_start(tmp_path / "seed0", legacy, seed=0)
    path = tmp_path / "seed0" / "warm_start" / "warm_start.json"
    saved = json.loads(path.read_text())
    for key in ("dual_min", "primal_eval_every"):
        del saved["config"][key]
    path.write_text(json.dumps(saved))
    assert stages.reusable_warm_start(legacy, tmp_path / "seed0", 0) is not None
    assert stages.reusable_warm_start(_config(tmp_path), tmp_path / "seed0", 0) is None


def test_a_warm_start_is_reused_only_with_the_same_recipe(tmp_path, save_warm_start):
    """The recipe (what the demo added to the examples, e.g. copy-through duals) is part of the reuse key;
    files written before it existed were made without one."""
    config = _config(tmp_path)
    save_warm_start(tmp_path / "seed0", config, seed=0)
    path = tmp_path / "seed0" / "warm_start" / "warm_start.json"
    saved = json.loads(path.read_text())
    del saved["config"]["recipe"]
    path.write_text(json.dumps(saved))
    assert stages.reusable_warm_start(config, tmp_path / "seed0", 0) is not None
    copy_through = _config(tmp_path, warm=replace(config.warm, recipe="copy_through=0.2"))
    assert stages.reusable_warm_start(copy_through, tmp_path / "seed0", 0) is None


# ---------------------------------------------------------------------------------------------
# The data a run reads is part of its reuse key (a data file keeps its path when its rows change)
# ---------------------------------------------------------------------------------------------


def _rows_and_paths(tmp_path: Path, min_letters: int = 0):
    import pandas as pd

    from dupo_verl.demo import ppo

    rows = pd.DataFrame({"prompt": [f"q{i}" for i in range(50)],
                         "extra_info": [json.dumps({"task_params": {"language_check_min_letters": min_letters}})] * 50})
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    rows.to_parquet(data / "train.parquet")
    rows.head(5).to_parquet(data / "val.parquet")
    (data / "agent_loops.yaml").write_text("- name: dupo_agent\n")
    return rows, ppo.RunPaths(model=tmp_path / "m", train_files=data / "train.parquet",
                              val_files=[data / "val.parquet"], agent_loop_config=data / "agent_loops.yaml",
                              workdir=tmp_path / "run")


def test_data_digest_follows_the_rows_not_the_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, paths = _rows_and_paths(tmp_path)
    first = stages.data_digest(paths)
    assert stages.data_digest(paths) == first
    # the same rows written again in other row groups, without pandas' metadata: same digest
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), paths.train_files, row_group_size=7)
    assert stages.data_digest(paths) == first
    # a task param changed in one row: another digest
    changed = rows.copy()
    changed.loc[3, "extra_info"] = json.dumps({"task_params": {"language_check_min_letters": 40}})
    changed.to_parquet(paths.train_files)
    assert stages.data_digest(paths) != first
    rows.to_parquet(paths.train_files)
    assert stages.data_digest(paths) == first
    # the agent-loop config and the val files count too; an absent file is a state of its own
    paths.agent_loop_config.write_text("- name: dupo_agent\n  x: 1\n")
    assert stages.data_digest(paths) != first
    paths.agent_loop_config.write_text("- name: dupo_agent\n")
    rows.head(6).to_parquet(paths.val_files[0])
    assert stages.data_digest(paths) != first
    paths.val_files[0].unlink()
    assert stages.data_digest(paths) not in (first, "")


def test_finished_run_is_trained_again_when_its_data_changed(tmp_path):
    _, paths = _rows_and_paths(tmp_path)
    digest = stages.data_digest(paths)
    record = RunRecord("dupo", 0, 0.3, 0.8, primal_after=0.45, detail={"overrides": ["a=1"], "data_digest": digest})
    (tmp_path / "run.json").write_text(json.dumps(asdict(record)))
    lines: list[str] = []
    assert stages.finished_run(tmp_path, ["a=1"], digest, lines.append) == record and lines == []
    assert stages.finished_run(tmp_path, ["a=1"], "0" * 64, lines.append) is None
    assert lines and "data files changed" in lines[-1]
    # a record from before digests were kept: reused on its overrides, and the log says so
    legacy = replace(record, detail={"overrides": ["a=1"]})
    (tmp_path / "run.json").write_text(json.dumps(asdict(legacy)))
    assert stages.finished_run(tmp_path, ["a=1"], digest, lines.append) == legacy
    assert "before data digests were kept" in lines[-1]


def test_translation_rows_prepared_twice_have_one_digest_and_a_guard_param_changes_it(tmp_path, monkeypatch):
    """The demo prepares its rows on every invocation: the same settings must give the same digest
    (so `--resume` reuses), another guard param another (so it does not)."""
    from dupo_verl.demo import ppo
    from dupo_verl.demo import translation_data as td
    from dupo_verl.demo import translation_demo as tdemo

    config = tdemo.TranslationDemoConfig(output=tmp_path, warm_sentences=20, rl_sentences=12, val_sentences=8,
                                         methods=("dupo",))

    def digest_of(folder: str) -> str:
        data = tdemo.prepare_data(config, tmp_path / folder, ("dupo",))
        return stages.data_digest(ppo.RunPaths(model=tmp_path, train_files=data["train_dupo"],
                                               val_files=[data["val_primal"], data["val_dual"]],
                                               agent_loop_config=data["agent_loops"], workdir=tmp_path))

    first = digest_of("a")
    assert digest_of("b") == first
    real_args = td.prepare_args
    monkeypatch.setattr(td, "prepare_args", lambda *a, **k: [
        "40" if prev == "--language-check-min-letters" else arg
        for prev, arg in zip([None, *real_args(*a, **k)], real_args(*a, **k), strict=False)])
    assert digest_of("c") != first


# ---------------------------------------------------------------------------------------------
# A run whose Ray did not start (an overloaded machine) is started again, never reported as trained
# ---------------------------------------------------------------------------------------------


class _FlakyRay:
    """Stands in for `run_job`: the first `failures` calls die in Ray's start-up (or with `text`)."""

    def __init__(self, failures: int, text: str = stages.RAY_START_FAILURE, steps=None):
        self.failures, self.text, self.steps, self.calls = failures, text, steps or {}, 0

    def __call__(self, argv, cwd, env, timeout_s, log_path, metrics_path):
        from dupo_verl.demo.launch import JobResult

        self.calls += 1
        failed = self.calls <= self.failures
        log_path.write_text(f"attempt {self.calls}\n" + (f"Exception: {self.text}.\n" if failed else "done\n"))
        return JobResult(rc=1 if failed else 0, timed_out=False, wall_s=1.0, log_path=log_path,
                         steps=dict(self.steps) if failed else {1: {"x": 1.0}})


def _launch(tmp_path, monkeypatch, fake):
    from dupo_verl.demo import ppo

    monkeypatch.setattr(stages, "run_job", fake)
    monkeypatch.setattr(stages.time, "sleep", lambda s: None)
    paths = ppo.RunPaths(model=tmp_path / "m", train_files=tmp_path / "t.parquet", val_files=[],
                         agent_loop_config=tmp_path / "a.yaml", workdir=tmp_path / "out" / "seed0" / "dupo")
    lines: list[str] = []
    job = stages.launch_main_ppo(_config(tmp_path / "out"), "cpu", "dupo", ppo.GRPOSettings(), paths, ["a=1"],
                                 lines.append)
    return job, paths.workdir, lines


def test_a_run_whose_ray_did_not_start_is_started_again(tmp_path, monkeypatch):
    fake = _FlakyRay(failures=2)
    job, run_dir, lines = _launch(tmp_path, monkeypatch, fake)
    assert fake.calls == 3 and job.ok
    assert (run_dir / "main_ppo.log").read_text() == "attempt 3\ndone\n"
    kept = sorted(p.name for p in run_dir.glob("main_ppo.ray_start_failed_*.log"))
    assert kept == ["main_ppo.ray_start_failed_1.log", "main_ppo.ray_start_failed_2.log"]
    assert sum("Ray did not start" in line for line in lines) == 2


def test_ray_start_retries_are_bounded_and_only_for_ray_start_failures(tmp_path, monkeypatch):
    always = _FlakyRay(failures=99)
    job, _, _ = _launch(tmp_path / "a", monkeypatch, always)
    assert always.calls == stages.RAY_START_ATTEMPTS and not job.ok  # reported failed after the last try
    other = _FlakyRay(failures=1, text="CUDA out of memory")
    job, _, _ = _launch(tmp_path / "b", monkeypatch, other)
    assert other.calls == 1 and not job.ok
    trained = _FlakyRay(failures=1, steps={1: {"x": 1.0}})  # it had trained a step: never started again
    job, _, _ = _launch(tmp_path / "c", monkeypatch, trained)
    assert trained.calls == 1 and not job.ok


def test_a_run_killed_by_rays_memory_monitor_says_what_to_do(tmp_path, monkeypatch):
    """Two runs of the grid died this way while a CI run shared the machine: the message says so."""
    oom = ("ray.exceptions.OutOfMemoryError: 4 worker(s) were killed due to the node running low on memory. "
           "Memory on the node was 22.53GB used / 23.54GB limit")
    killed = _FlakyRay(failures=1, text=oom, steps={1: {"x": 1.0}})
    job, _, lines = _launch(tmp_path / "a", monkeypatch, killed)
    assert killed.calls == 1 and not job.ok  # not retried by itself: the machine is still short
    hints = [line for line in lines if "memory monitor" in line]
    assert len(hints) == 1 and "--resume" in hints[0] and hints[0].startswith("[seed 0] dupo: ")
    other = _FlakyRay(failures=1, text="ValueError: bad row", steps={1: {"x": 1.0}})
    _, _, lines = _launch(tmp_path / "b", monkeypatch, other)
    assert not any("memory monitor" in line for line in lines)


def test_an_unfinished_run_trained_again_keeps_its_logs(tmp_path, monkeypatch):
    run_dir = tmp_path / "out" / "seed0" / "dupo"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "main_ppo.log").write_text("pending: 0, running: 1200, finished: 0\n")
    (run_dir / "run.json").write_text('{"status": "timed_out"}')
    (run_dir / "checkpoints" / "big.bin").write_bytes(b"x" * 10)
    job, run_dir, lines = _launch(tmp_path, monkeypatch, _FlakyRay(failures=0))
    assert job.ok and (run_dir / "main_ppo.log").read_text() == "attempt 1\ndone\n"
    kept = list((run_dir.parent / stages.UNFINISHED_DIR).glob("dupo-*"))
    assert len(kept) == 1
    assert sorted(p.name for p in kept[0].iterdir()) == ["main_ppo.log", "run.json"]  # no checkpoints
    assert "running: 1200" in (kept[0] / "main_ppo.log").read_text()
    assert any(str(kept[0]) in line for line in lines)
    # a fresh run folder (nothing there before) keeps nothing
    job, _, _ = _launch(tmp_path / "fresh", monkeypatch, _FlakyRay(failures=0))
    assert not (tmp_path / "fresh" / "out" / "seed0" / stages.UNFINISHED_DIR).exists()


def test_unfinished_runs_with_the_same_time_are_kept_apart(tmp_path):
    run_dir = tmp_path / "seed0" / "dupo"
    run_dir.mkdir(parents=True)
    (run_dir / "main_ppo.log").write_text("first")
    first = stages.keep_unfinished_run(run_dir, lambda line: None)
    (run_dir / "main_ppo.log").write_text("second")
    import os
    os.utime(run_dir / "main_ppo.log", (first.stat().st_mtime, (first / "main_ppo.log").stat().st_mtime))
    second = stages.keep_unfinished_run(run_dir, lambda line: None)
    assert first != second
    assert (first / "main_ppo.log").read_text() == "first" and (second / "main_ppo.log").read_text() == "second"
    assert stages.keep_unfinished_run(tmp_path / "empty", lambda line: None) is None
