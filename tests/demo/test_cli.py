"""`dupo-verl demo two-sum` argument handling (no training here)."""

from __future__ import annotations

import pytest

from dupo_verl.cli import main
from dupo_verl.demo import ppo


def test_unknown_method_is_a_usage_error(tmp_path, capsys):
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--methods", "dupo,magic"]) == 2
    assert "unknown method(s) ['magic']" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_bad_grpo_setting_is_a_usage_error(tmp_path, capsys):
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--group-size", "1"]) == 2
    assert "--group-size must be an integer in [2, " in capsys.readouterr().err


def test_mini_batches_reach_the_grpo_settings(tmp_path, capsys):
    # 32 prompts cannot be split into 3 mini batches: the flag is checked by GRPOSettings
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--batch-size", "32", "--mini-batches", "3"]) == 2
    assert "not divisible by mini_batches 3" in capsys.readouterr().err


def test_cpu_without_verl_cpu_platform_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ppo, "cpu_support_available", lambda: False)
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "verl_cpu_support" in err and ".venv-e2e/bin/dupo-verl" in err
    assert not any(tmp_path.iterdir())  # it stopped before any work


def test_demo_requires_a_subcommand(capsys):
    with pytest.raises(SystemExit):
        main(["demo"])


def test_continue_from_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ppo, "cpu_support_available", lambda: True)
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--continue-from", str(tmp_path)]) == 2
    assert "another output folder" in capsys.readouterr().err
    missing = tmp_path / "never_made"
    assert main(["demo", "two-sum", "--output", str(tmp_path / "out"), "--device", "cpu",
                 "--continue-from", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "--continue-from" in err and str(missing / "config.json") in err
    assert not (tmp_path / "out").exists()  # it stopped before any work


def test_a_plain_rerun_never_deletes_finished_runs(tmp_path, capsys):
    finished = tmp_path / "seed0" / "dupo" / "results.json"
    finished.parent.mkdir(parents=True)
    finished.write_text("{}")
    assert main(["demo", "two-sum", "--output", str(tmp_path), "--methods", "warm_start"]) == 1
    err = capsys.readouterr().err
    assert "already holds a demo's runs (seed0)" in err and "--resume" in err
    assert finished.read_text() == "{}"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0"]  # nothing written beside it
