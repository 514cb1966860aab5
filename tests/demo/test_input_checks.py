"""Bad demo input is one `error:` line naming the option, before any file is written; a `--collect`
never writes empty tables over an output's results (validation paths only: nothing trains here)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from dupo_verl.cli import main
from dupo_verl.demo import ppo, stages
from dupo_verl.demo import translation_demo as tr
from dupo_verl.demo import two_sum_demo as ts
from dupo_verl.demo.warm_start import WarmStartConfig

HUGE = "99999999999999999999"
TWO_SUM = [
    ("--dual-samples", "0"), ("--dual-samples", "-1"),
    ("--dual-temperature", "nan"), ("--dual-temperature", "inf"), ("--dual-temperature", "-1"),
    ("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-1"),
    ("--lr", "nan"), ("--lr", "inf"), ("--warm-lr", "nan"), ("--warm-lr", "inf"),
    ("--run-timeout", "0"), ("--run-timeout", "-1"), ("--run-timeout", "nan"), ("--run-timeout", "inf"),
    ("--hidden-size", "0"), ("--hidden-size", "-1"), ("--num-layers", "0"), ("--num-layers", "-1"),
    ("--num-heads", "0"), ("--num-heads", "-1"), ("--test-freq", "0"), ("--test-freq", "-1"),
    ("--first-seed", "-1"), ("--seeds", HUGE), ("--steps", HUGE), ("--batch-size", HUGE),
    ("--warm-dual-target", "nan"), ("--warm-primal-eval-every", "-1"), ("--mini-batches", "64"),
]
TRANSLATION = [
    ("--lr", "nan"), ("--warm-lr", "inf"), ("--run-timeout", "0"), ("--run-timeout", "nan"),
    ("--hidden-size", "0"), ("--num-layers", "-1"), ("--num-heads", "0"), ("--test-freq", "0"),
    ("--first-seed", "-1"), ("--warm-sentences", HUGE), ("--rl-sentences", HUGE), ("--val-sentences", HUGE),
    ("--incentive-pairs", HUGE), ("--incentive-pairs", "501"), ("--steps", HUGE),
]


@pytest.fixture(autouse=True)
def never_train(monkeypatch):
    """Reach every check as in the e2e venv (CPU support present), but fail instead of any training."""
    monkeypatch.setattr(ppo, "cpu_support_available", lambda: True)
    monkeypatch.setattr(stages, "run_job", lambda *a, **k: pytest.fail("a check must not start main_ppo"))
    for module in (ts, tr):
        monkeypatch.setattr(module, "build_tiny_lm", lambda *a, **k: pytest.fail("a check must not build a model"))
        monkeypatch.setattr(module, "warm_start", lambda *a, **k: pytest.fail("a check must not warm-start"))


def _one_error_line(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("demo, option, value", [("two-sum", *c) for c in TWO_SUM]
                         + [("translation", *c) for c in TRANSLATION])
def test_a_bad_number_is_one_line_naming_its_option_before_any_file(tmp_path, capsys, demo, option, value):
    out = tmp_path / "out"
    assert main(["demo", demo, "--output", str(out), "--methods", "dupo", option, value]) == 2
    _one_error_line(capsys, f"error: {option} must be ")
    assert not out.exists()


def test_the_settings_themselves_refuse_nan_and_infinity(tmp_path):
    """A NaN learning rate passed `lr <= 0`; the library-level checks catch it without the CLI."""
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a finite number"):
            ppo.GRPOSettings(lr=bad).validate()
        with pytest.raises(ValueError, match="lr must be a finite number"):
            WarmStartConfig(lr=bad).validate()
        with pytest.raises(ValueError, match="dual_temperature must be a finite number"):
            ppo.GRPOSettings(dual_temperature=bad).validate()
    with pytest.raises(ValueError, match="dual_samples"):
        ppo.GRPOSettings(dual_samples=0).validate()
    with pytest.raises(ValueError, match="--num-heads"):
        stages.ModelConfig(num_heads=0).validate()


@pytest.mark.parametrize("args, words", [
    (["--num-problems", "-1"], ["--num-problems must be an integer in [2, 2500], got -1"]),
    (["--operand-max", "0"], ["--operand-min 0 --operand-max 0 give 1 distinct"]),
    (["--operand-max", "5"], ["--val-problems must be an integer in [1, 35]", "got 600"]),
    (["--operand-min", "50", "--operand-max", "10"], ["--operand-max must be an integer in [50, "]),
])
def test_problem_counts_name_the_option_that_is_wrong(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    assert main(["demo", "two-sum", "--output", str(out), "--methods", "dupo", *args]) == 2
    assert "val_problems must be in 1.." not in _one_error_line(capsys, *words)
    assert not out.exists()  # validated before the folder is made


@pytest.mark.parametrize("demo", ["two-sum", "translation"])
@pytest.mark.parametrize("extra", [[], ["--collect"]])
def test_an_existing_file_as_output_is_one_line(tmp_path, capsys, demo, extra):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep")
    for output in (existing, existing / "sub"):
        assert main(["demo", demo, "--output", str(output), "--methods", "dupo", *extra]) == 2
        _one_error_line(capsys, f"--output {output} is not a folder")
    assert existing.read_text() == "keep"


@pytest.mark.parametrize("demo", ["two-sum", "translation"])
def test_collect_with_nothing_to_collect_says_so_and_writes_nothing(tmp_path, capsys, demo):
    empty, absent = tmp_path / "empty", tmp_path / "absent"
    empty.mkdir()
    for out in (empty, absent):
        assert main(["demo", demo, "--output", str(out), "--collect"]) == 1
        _one_error_line(capsys, "--collect: nothing to collect in")
    assert not any(empty.iterdir()) and not absent.exists()


def test_continue_from_another_demos_output_says_so(tmp_path, capsys):
    two_sum_out, translation_out = tmp_path / "two_sum", tmp_path / "translation"
    for folder, config in ((two_sum_out, {"val_problems": 600, "operand_max": 49}),
                           (translation_out, {"warm_sentences": 4000, "val_sentences": 500})):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**config, "continue_from": None}))
    for demo, previous in (("two-sum", translation_out), ("translation", two_sum_out)):
        out = tmp_path / f"next_{demo}"
        assert main(["demo", demo, "--output", str(out), "--methods", "dupo", "--device", "cpu",
                     "--continue-from", str(previous)]) == 1
        line = _one_error_line(capsys, f"{previous} is not an output of this demo", "another demo's output")
        assert "was None" not in line and not out.exists()


@pytest.fixture
def collected(tmp_path, monkeypatch, save_warm_start) -> ts.DemoConfig:
    """A two-sum output gathered by one `--collect` (a saved warm start, no run yet), with a marker
    in its tables and an unfinished run beside them."""
    monkeypatch.setattr(ts, "_heldout_accuracy", lambda *a: (0.4, 0.9))
    out = tmp_path / "out"
    config = ts.DemoConfig(output=out, methods=("warm_start", "dupo"), operand_max=19, val_problems=40,
                           device="cpu", collect=True)
    save_warm_start(out / "seed0", config, seed=0)
    ts.run_demo(config, log=lambda _: None)
    (out / "seed0" / "dupo").mkdir()
    (out / "seed0" / "dupo" / "x").write_text("")
    for name in ("results.json", "results.md"):
        (out / name).write_text((out / name).read_text() + " MARKER")
    return config


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_collect_refuses_an_output_made_with_other_settings(collected, capsys):
    out = Path(collected.output)
    kept = _files(out)
    with pytest.raises(ValueError, match=r"was made with other settings \(grpo\.steps was 24 there, 5 here\)"):
        ts.run_demo(replace(collected, grpo=replace(collected.grpo, steps=5)), log=lambda _: None)
    args = ["demo", "two-sum", "--output", str(out), "--collect", "--methods", "warm_start,dupo", "--device", "cpu",
            "--operand-max", "19", "--val-problems", "40"]
    assert main([*args, "--steps", "5", "--lr", "0.001"]) == 1
    _one_error_line(capsys, "grpo.steps was 24 there, 5 here", "grpo.lr was 0.0003 there, 0.001 here")
    assert _files(out) == kept  # results, tables, config and plot untouched
    assert main(args) == 0  # the same settings still collect (methods and seeds may differ)
    assert "MARKER" not in (out / "results.md").read_text()


def test_collect_refuses_another_demos_output(collected, capsys):
    out = Path(collected.output)
    kept = _files(out)
    assert main(["demo", "translation", "--output", str(out), "--collect"]) == 1
    _one_error_line(capsys, "is not an output of this demo", "warm_sentences")
    assert _files(out) == kept


def test_collect_that_finds_nothing_made_with_its_settings_writes_no_tables(tmp_path):
    """A seed folder with no usable warm start or run (and no config.json to compare with): the
    collect finds nothing and must not write empty results."""
    out = tmp_path / "out"
    (out / "seed0" / "dupo").mkdir(parents=True)
    (out / "seed0" / "dupo" / "main_ppo.log").write_text("killed\n")
    config = ts.DemoConfig(output=out, methods=("warm_start", "dupo"), operand_max=19, val_problems=40,
                           device="cpu", collect=True)
    with pytest.raises(ValueError, match=r"nothing to collect .*seed0/warm_start missing"):
        ts.run_demo(config, log=lambda _: None)
    assert not any((out / name).exists() for name in ("results.json", "results.md", "config.json"))


def test_translation_collect_refuses_other_settings(tmp_path):
    out = tmp_path / "out"
    (out / "seed0" / "dupo").mkdir(parents=True)
    config = tr.TranslationDemoConfig(output=out, collect=True, device="cpu")
    recorded = {**stages.config_record(config, "cpu", {}), "grpo": {**asdict(config.grpo), "steps": 48}}
    (out / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match=r"grpo\.steps was 48 there, 24 here"):
        tr.run_demo(config, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "seed0"]


@pytest.mark.parametrize("demo", ["two-sum", "translation"])
@pytest.mark.parametrize("flag, value, words", [
    ("--override", "junk", "--override 'junk' is not a Hydra override"),
    ("--override", "a==", "is not a Hydra override"),
    ("--python", "/nonexistent/python", "--python '/nonexistent/python' is not an executable"),
])
def test_a_bad_launch_flag_is_one_line_before_any_work(tmp_path, capsys, demo, flag, value, words):
    """`--override junk` and a missing `--python` passed the checks and failed only at main_ppo, after
    the warm start."""
    out = tmp_path / "out"
    assert main(["demo", demo, "--output", str(out), "--methods", "dupo", flag, value]) == 2
    _one_error_line(capsys, words)
    assert not out.exists()
