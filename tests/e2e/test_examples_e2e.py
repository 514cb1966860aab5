"""Each `examples/*.sh`, run itself (`bash examples/<name>.sh <CPU layer>`), for 2 GRPO steps on CPU.

The script file is what runs: its variables (model, data, GPU counts, python) come from the
environment and the CPU layer (example_layer.py: platform and size only, allow-listed by the unit
tier's tests/verl/test_examples.py) is appended to its overrides. Data is made with the `dupo-verl
prepare` commands the script's header gives, over short real GSM8K / FLORES subsets. Validation
runs as the scripts set it (before training and at the last step).

These runs replace the former composed-override tests of the same V1 paths (math and translation
self-dual, frozen dual through verl's reward-model servers) and make the same assertions: step 2
reached with real weight sync, DuPO metrics at each step, no dual errors.

Every script runs, the frozen-dual one too (its plain `single_turn_agent` rollouts take the reward
manager's branch without a live verdict), so what GPU users start from is what CI ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from checks import assert_dupo_step_metrics, assert_trained
from example_layer import ANCHORED, EXAMPLES_DIR, FROZEN, WITH_REWARD_MODEL, cpu_layer, script_env
from prepared_data import dupo_cli, short_flores_pair, short_gsm8k_subset

VAL_ROWS = 4


def _prepare(kind: str, out: Path, *args: str) -> Path:
    dupo_cli("prepare", kind, *args, "--output", str(out), "--no-progress")
    return out


@pytest.fixture(scope="module")
def data(e2e_root: Path) -> dict[str, Path]:
    """Train and validation files as each script's header prepares them."""
    d = e2e_root / "data" / "examples"
    train_src = short_gsm8k_subset(d / "gsm8k_train.jsonl")
    val_src = short_gsm8k_subset(d / "gsm8k_val.jsonl", rows=VAL_ROWS, skip=16)
    src, _ = short_flores_pair(d / "flores_train", "eng_Latn", "deu_Latn")
    val_src_tr, val_ref = short_flores_pair(d / "flores_val", "eng_Latn", "deu_Latn", rows=VAL_ROWS, skip=16)
    val_math = ("--answer-key", "answer", "--keep-unmaskable", "--agent-name", "single_turn_agent")
    # the anchored script's validation rows keep prepare's default agent (dupo_agent): both judges score them
    val_math_dupo = ("--answer-key", "answer", "--keep-unmaskable")
    lang = ("--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn")
    return {
        "math_train": _prepare("math", d / "math_train.parquet", "--input", str(train_src), "--answer-key", "answer"),
        "math_val": _prepare("math", d / "math_val.parquet", "--input", str(val_src), *val_math),
        "math_val_dupo": _prepare("math", d / "math_val_dupo.parquet", "--input", str(val_src), *val_math_dupo),
        "math_train_frozen": _prepare(
            "math", d / "math_train_frozen.parquet", "--input", str(train_src), "--answer-key", "answer",
            "--agent-name", "single_turn_agent",
        ),
        "translation_train": _prepare("translation", d / "en_de_train.parquet", "--input", str(src), *lang),
        "translation_val": _prepare(
            "translation", d / "en_de_val.parquet", "--input", str(val_src_tr), "--reference", str(val_ref), *lang,
            "--agent-name", "single_turn_agent",
        ),
    }


CASES = {
    "grpo_math_self_dual.sh": ("math_train", "math_val"),
    "grpo_translation_self_dual.sh": ("translation_train", "translation_val"),
    ANCHORED: ("math_train", "math_val_dupo"),
    FROZEN: ("math_train_frozen", "math_val"),
}


def _val_keys(metrics: dict[str, float], part: str) -> list[str]:
    return [key for key in metrics if key.startswith("val-") and part in key]


@pytest.mark.parametrize("script", sorted(CASES), ids=lambda s: s.removesuffix(".sh"))
def test_example_script_trains_two_steps(script: str, run_ppo, data, peaked_policy: Path, tiny_dual: Path) -> None:
    train, val = CASES[script]
    name = script.removesuffix(".sh")
    env = script_env(
        script, model=peaked_policy, train_files=data[train], val_files=data[val], python=sys.executable,
        experiment=name, dual_model=tiny_dual,
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # dupo-verl
    result, _ = run_ppo.script(name, EXAMPLES_DIR / script, env=env, extra=cpu_layer(script))

    last = assert_trained(result, steps=2)
    assert_dupo_step_metrics(result.steps)
    # validation ran at the last step, on the rows the header's prepare command made
    if script in WITH_REWARD_MODEL:
        # every row, validation included, goes through the `dupo` manager: gold accuracy as a metric
        assert _val_keys(last, "dupo_gold_acc"), sorted(last)
    else:
        assert _val_keys(last, "val-core/"), sorted(last)
    if script == ANCHORED:
        assert_anchored_step_metrics(result.steps)
    print(f"{name}: rollout_corr/log_ppl_abs_diff at step 2 = {last['rollout_corr/log_ppl_abs_diff']:.4f}")


def assert_anchored_step_metrics(steps: dict[int, dict[str, float]], count: int = 2) -> None:
    """The disagreement rate of the two judges was logged at every step, and dual questions were asked.

    That the live verdict reached the reward loop for every sample is proven by the run finishing:
    in anchored mode the `dupo` manager raises on a sample without one.
    """
    for step in range(1, count + 1):
        metrics = steps[step]
        assert "dupo/judge_disagreement/mean" in metrics, f"step {step}: {sorted(metrics)}"
        disagreement = metrics["dupo/judge_disagreement/mean"]
        assert 0.0 <= disagreement <= 1.0
        assert metrics["dupo/dual_questions/mean"] > 0, f"step {step}: no judge asked a question"
        print(f"step {step}: dupo/judge_disagreement/mean = {disagreement:.3f}")


def test_every_example_script_is_run() -> None:
    """A new examples/*.sh cannot ship without its CPU run here."""
    assert set(CASES) == {p.name for p in EXAMPLES_DIR.glob("*.sh")}
