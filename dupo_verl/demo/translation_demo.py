"""`dupo-verl demo translation`: DuPO teaches a tiny model to translate English into Dupish (a
constructed language, `translation_data.py`) without references, through the real `translation`
task and verl's `main_ppo`.

Per seed: build a tiny Qwen2 model, warm-start it on a small parallel set in both directions
(English -> Dupish, the primal; Dupish -> English, the dual) until the primal is mid-range and the
dual stronger, then train it with GRPO once per method from that warm start:
- `dupo`: `dupo_agent`, reward = chrF of the back-translation against the source; the task's guards
  on (near-copy and wrong-language answers get the no-answer reward; the Dupish detector is
  `translation_data.detect_language`). The rows keep their reference only for the logged
  `dupo_gold_acc` (chrF against it); `hybrid_weight=0` keeps it out of the reward;
- `dupo_guards_off`: the same with every guard off in the rows (`GUARDS_OFF`), to show
  the shortcuts the guards close (every run's rollouts are put to the guards afterwards: `translation_shortcuts.py`);
- `oracle`: `single_turn_agent`, reward = chrF against the reference (`reward_fns.compute_score`);
- `shuffled`: DuPO's rewards permuted across rollouts (`replay_agent.py`);
- `warm_start`: no RL.
Held-out: greedy sacrebleu corpus chrF and BLEU of both directions on `val_sentences` unseen
sentences, before and after; verl validates the same sentences every `test_freq` steps (mean
sentence chrF and BLEU: the curves; `last3` = mean of the last 3 validations).

The output folder is laid out as the two-sum demo's (config.json, data/, seed<k>/warm_start,
seed<k>/<method>/{main_ppo.log, metrics.jsonl, steps.jsonl, run.json}, results.json, results.md,
chrf_vs_steps.png), and `resume`, `collect` and `continue_from` mean the same: both demos run
through `stages.py` (warm starts, runs, reuse and continuation) and share the warm start and the
main_ppo command builder.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from dupo_verl.demo import ppo, stages
from dupo_verl.demo.evaluate import generate_greedy, load_model, prompt_ids
from dupo_verl.demo.examples import DUAL, PRIMAL, examples_of, read_problems, task_of
from dupo_verl.demo.results import RunRecord, _mean_curve, finished_stats, last3, seed_count, val_curve
from dupo_verl.demo.tiny_lm import build_tiny_lm
from dupo_verl.demo.translation_data import DETECTOR, SRC_LANG, TGT_LANG, prepare_pairs
from dupo_verl.demo.translation_incentive import format_incentive
from dupo_verl.demo.translation_recipe import recipe_examples
from dupo_verl.demo.translation_shortcuts import shortcut_rates, shortcut_summary
from dupo_verl.demo.translation_tables import per_seed_markdown
from dupo_verl.demo.two_sum_data import read_rows, write_rows
from dupo_verl.demo.warm_start import WarmStartConfig, WarmStartResult, warm_start
from dupo_verl.tasks.base import REJECTION_REASONS
from dupo_verl.tasks.registry import allow_task_modules

METHODS = ("warm_start", "dupo", "oracle", "shuffled", "dupo_guards_off", "dupo_likelihood")
RL_METHODS = METHODS[1:]
# the main_ppo command of each method is that of this two-sum method (its rows make the difference)
PPO_METHOD = {"dupo": "dupo", "oracle": "oracle", "shuffled": "shuffled", "dupo_guards_off": "dupo",
              "dupo_likelihood": "dupo"}
# task params of `dupo_guards_off`: every translation guard off
GUARDS_OFF = {"language_check": "off", "copy_threshold": 0.0, "partial_copy_threshold": 0.0}
# the DuPO options that make a method differ from the command of its PPO_METHOD
METHOD_OPTIONS = {"dupo_likelihood": ("+dupo.dual_mode=likelihood",)}
PRIMAL_SOURCE = "translation/primal"
DUAL_SOURCE = "translation/dual"
VALIDATION_AGENT = "single_turn_agent"
GUARD_METRICS = ("near_copy", "wrong_language", "leaks", "no_answer")
# the shortcut rates measured on every run's rollouts (translation_shortcuts.py), in results.json
SHORTCUT_KEYS = (*REJECTION_REASONS, "no_answer", "rejected", "rejected_first", "rejected_last", "chrf_vs_source")
AGENT_LOOP_YAML = """\
# Agent loops of the translation demo (the DuPO options come from +dupo.<key> overrides).
- name: dupo_agent
  _target_: dupo_verl.verl.agent_loop.DuPOAgentLoop
- name: dupo_shuffled_agent
  _target_: dupo_verl.demo.replay_agent.ReplayDuPOAgentLoop
  coin_window: {window}
"""


# what a continued run must share with the output it continues: the sentences
SAME_SENTENCES = ("warm_sentences", "rl_sentences", "val_sentences", "data_seed")
MAX_SENTENCES = 1_000_000  # per option: the grammar gives 100000 pairs in about a second


def default_warm() -> WarmStartConfig:
    """Warm start stopped on the share of dev sentences translated with chrF >= 0.5."""
    return WarmStartConfig(max_steps=3000, batch_size=32, lr=2e-3, warmup_steps=50, dual_fraction=0.5,
                           primal_target=0.3, dual_target=0.6, dual_min=0.6, eval_every=100, dev_size=80,
                           max_new_tokens=48)


def default_grpo() -> ppo.GRPOSettings:
    return ppo.GRPOSettings(steps=24, batch_size=16, group_size=4, lr=2e-5, test_freq=4, prompt_length=80,
                            response_length=48, dual_max_tokens=48)


@dataclass(frozen=True)
class TranslationDemoConfig:
    """Everything one `dupo-verl demo translation` invocation does (written to config.json)."""

    output: Path
    methods: tuple[str, ...] = ("dupo",)
    seeds: int = 1
    first_seed: int = 0
    warm_sentences: int = 4000  # parallel pairs of the supervised warm start
    rl_sentences: int = 3000  # source sentences of the GRPO prompts
    val_sentences: int = 500  # held-out pairs (never trained on)
    data_seed: int = 0
    model: stages.ModelConfig = stages.ModelConfig(hidden_size=128, num_layers=2, num_heads=4, vocab_size=1000)
    warm: WarmStartConfig = field(default_factory=default_warm)
    grpo: ppo.GRPOSettings = field(default_factory=default_grpo)
    device: str = "auto"
    python: str = sys.executable
    run_timeout_s: float = 1800.0
    wait_busy_s: float = 3600.0
    replay_window: int = 256  # `shuffled`: rewards drawn from this many recent rollouts
    incentive_pairs: int = 0  # > 0: what the reward pays each shortcut, on this many held-out pairs per warm start
    threads: int | None = None
    resume: bool = False
    collect: bool = False
    continue_from: Path | None = None
    extra_overrides: tuple[str, ...] = ()

    def validate(self) -> None:
        """Every setting, each named as its command-line option, before any file is written."""
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)} or all")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        stages.check_staged(self)
        for name in SAME_SENTENCES[:3]:  # the grammar's pairs are all held in memory at once
            stages.check_int("--" + name.replace("_", "-"), getattr(self, name), 10, MAX_SENTENCES)
        # only the first val_sentences held-out pairs exist to score
        stages.check_int("--incentive-pairs", self.incentive_pairs, 0, self.val_sentences)
        stages.check_int("data_seed", self.data_seed, 0, stages.MAX_SEED)
        stages.check_int("replay_window", self.replay_window, 1, 10**7)
        self.warm.validate()
        self.grpo.validate()
        if self.continue_from is not None and Path(self.continue_from).resolve() == Path(self.output).resolve():
            raise ValueError("--continue-from must name another output folder than --output")


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def method_rows(rows: Sequence[Mapping[str, Any]], method: str) -> list[dict[str, Any]]:
    """Training rows of `method` (prepared rows, references kept; see the module docstring)."""
    if method not in PPO_METHOD:
        raise ValueError(f"unknown method {method!r}; RL methods: {', '.join(RL_METHODS)}")
    out = []
    for row in rows:
        new = copy.deepcopy(dict(row))
        new["agent_name"] = ppo.METHOD_AGENTS[PPO_METHOD[method]]
        if method == "dupo_guards_off":
            params = new["extra_info"]["dupo"]["params"]
            params.update(GUARDS_OFF)
        out.append(new)
    return out


def validation_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(primal rows, dual rows) of the held-out pairs, greedy-scored by `reward_fns.compute_score`
    against the reference (primal) and the source (dual)."""
    primal, dual = [], []
    for i, row in enumerate(rows):
        gold = str(row["reward_model"]["ground_truth"])
        problem = read_problem(row, i)
        primal.append(_val_row(PRIMAL_SOURCE, problem.primal.messages, gold, TGT_LANG, i))
        dual.append(_val_row(DUAL_SOURCE, problem.duals[0].messages, problem.duals[0].target, SRC_LANG, i))
    return primal, dual


def _val_row(source: str, messages, gold: str, lang: str, index: int) -> dict[str, Any]:
    return {"data_source": source, "prompt": list(messages), "ability": "translation", "agent_name": VALIDATION_AGENT,
            "reward_model": {"style": "rule", "ground_truth": gold},
            "extra_info": {"index": index, "split": "test", "tgt_lang": lang}}


def read_problem(row: Mapping[str, Any], index: int):
    from dupo_verl.demo.examples import problem_from_row

    return problem_from_row(row, str(row["reward_model"]["ground_truth"]), index)


def prepare_data(config: TranslationDemoConfig, data_dir: Path, rl_methods: Sequence[str]) -> dict[str, Path]:
    """`prepare translation` rows split into warm-start pairs and RL prompts, per-method rows, val rows."""
    train, heldout = prepare_pairs(data_dir, config.warm_sentences + config.rl_sentences, config.val_sentences,
                                   seed=config.data_seed)
    rows = read_rows(train)
    paths = {"prepared": train, "heldout": heldout,
             "warm": write_rows(rows[: config.warm_sentences], data_dir / "warm_pairs.parquet")}
    rl_rows = rows[config.warm_sentences:]
    for method in rl_methods:
        paths[f"train_{method}"] = write_rows(method_rows(rl_rows, method), data_dir / f"train_{method}.parquet")
    primal, dual = validation_rows(read_rows(heldout))
    paths["val_primal"] = write_rows(primal, data_dir / "val_primal.parquet")
    paths["val_dual"] = write_rows(dual, data_dir / "val_dual.parquet")
    paths["agent_loops"] = data_dir / "agent_loops.yaml"
    paths["agent_loops"].write_text(AGENT_LOOP_YAML.format(window=config.replay_window))
    return paths


def method_command(config: TranslationDemoConfig, device: str, method: str, grpo: ppo.GRPOSettings,
                   model_dir: Path, data: Mapping[str, Path], run_dir: Path,
                   start: Path | None = None) -> tuple[ppo.RunPaths, list[str]]:
    """The main_ppo overrides of one run: the two-sum command of `PPO_METHOD[method]` on this method's rows."""
    paths = ppo.RunPaths(model=Path(start or model_dir), train_files=data[f"train_{method}"],
                         val_files=[data["val_primal"], data["val_dual"]], agent_loop_config=data["agent_loops"],
                         workdir=run_dir)
    argv = ppo.overrides(PPO_METHOD[method], paths, grpo, device)
    argv = [f"trainer.experiment_name={method}_seed{grpo.seed}" if o.startswith("trainer.experiment_name=") else o
            for o in argv]
    argv = [o.replace("trainer.project_name=dupo_demo", "trainer.project_name=dupo_demo_translation") for o in argv]
    return paths, argv + list(METHOD_OPTIONS.get(method, ())) + list(config.extra_overrides)


# ---------------------------------------------------------------------------------------------
# Held-out evaluation
# ---------------------------------------------------------------------------------------------


def heldout_scores(model_dir: Path, heldout, max_new_tokens: int) -> dict[str, float]:
    """Greedy sacrebleu corpus chrF and BLEU (0-100) of both directions on the held-out pairs, and the
    share (%) of greedy primal answers the guards would reject (`primal_rejected`)."""
    import sacrebleu

    model, tokenizer = load_model(str(model_dir))
    out: dict[str, float] = {}
    for kind in (PRIMAL, DUAL):
        examples = examples_of(heldout, kind)
        replies = generate_greedy(model, tokenizer, [prompt_ids(tokenizer, e.messages) for e in examples],
                                  max_new_tokens)
        task = task_of(heldout)
        label = task.tgt_name if kind == PRIMAL else task.src_name
        from dupo_verl.tasks.translation import clean_output

        hyps = [clean_output(r, label) for r in replies]
        refs = [[e.target for e in examples]]
        out[f"{kind}_chrf"] = round(sacrebleu.corpus_chrf(hyps, refs).score, 2)
        out[f"{kind}_bleu"] = round(sacrebleu.corpus_bleu(hyps, refs).score, 2)
        if kind == PRIMAL:  # the guards' verdict (defaults on) on each greedy answer: a shortcut the policy now prefers
            out["primal_rejected"] = rejected_percent(task, heldout, hyps)
            out["samples"] = [{"source": e.messages[-1]["content"].rsplit("\n", 1)[-1], "reply": h, "reference": e.target}
                              for e, h in list(zip(examples, hyps, strict=True))[:3]]
    return out


def rejected_percent(task, problems, answers: Sequence[str]) -> float:
    """The share (%) of `answers` (one per problem, in order) that the task's guards reject."""
    verdicts = [task.reject_answer(a, [d.dual for d in p.duals]) for a, p in zip(answers, problems, strict=True)]
    return round(100 * sum(v is not None for v in verdicts) / max(1, len(verdicts)), 2)


def metric_curve(steps: Mapping[int, Mapping[str, float]], source: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of verl's validation metric `<key>` for `source` (`val-*/<source>/<key>/mean@1`)."""
    curve = []
    for step in sorted(steps):
        for prefix in ("val-core", "val-aux"):
            value = steps[step].get(f"{prefix}/{source}/{key}/mean@1")
            if value is not None:
                curve.append((step, value))
                break
    return curve


def guard_rates(steps: Mapping[int, Mapping[str, float]]) -> dict[str, float | None]:
    """Share of training rollouts each guard (or no answer) rejected, over all steps (and at the
    last), the mean chrF of the rollouts against their reference (`dupo_gold_acc`, never in a DuPO
    reward), DuPO's reward and the reward paid (`score`)."""
    out: dict[str, float | None] = {}
    keys = {**{name: f"dupo/{name}/mean" for name in (*GUARD_METRICS, "gold_acc", "reward")},
            "score": "critic/score/mean"}  # the reward GRPO was paid (the oracle's chrF, the replayed one)
    for name, key in keys.items():
        values = [m[key] for _, m in sorted(steps.items()) if key in m]
        out[name] = statistics.fmean(values) if values else None
        out[f"{name}_last"] = values[-1] if values else None
    return out


# ---------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------


def run_demo(config: TranslationDemoConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every requested method for every seed; write and return `results.json`'s content."""
    config.validate()
    allow_task_modules([DETECTOR.partition(":")[0]])  # the rows name the demo's own language detector
    device = stages.resolve_device(config.device)
    rl_methods = [m for m in RL_METHODS if m in config.methods]
    if rl_methods and device == "cpu" and not config.collect and not ppo.cpu_support_available():
        raise RuntimeError(
            f"main_ppo on CPU needs the `{ppo.CPU_SUPPORT_MODULE}` module (verl's CPU platform): run the demo "
            "from the end-to-end environment, `.venv-e2e/bin/dupo-verl demo translation ...`"
        )
    continuation = stages.plan_continuation(config, rl_methods, lambda previous_out: stages.check_same_settings(
        config, previous_out, SAME_SENTENCES, "the sentences"))
    out = Path(config.output).resolve()
    stages.refuse_to_overwrite(out, config, device, SAME_SENTENCES)
    stages.make_output(out)
    started = time.monotonic()
    data = prepare_data(config, out / "data", rl_methods)
    heldout = read_problems(data["heldout"])
    guard_task = task_of(heldout)  # the prepared rows' task: every guard on, with its defaults
    max_tokens = config.warm.max_new_tokens

    def warm_record(seed: int, warm: WarmStartResult, before: dict[str, Any]) -> RunRecord:
        return RunRecord("warm_start", seed, before["primal_chrf"] / 100, before["dual_chrf"] / 100, wall_s=warm.wall_s,
                         detail={"before": before, "after": before, "warm_start": warm.to_dict()})

    def finish(method, grpo, paths, argv, job, before, previous) -> RunRecord:
        return _finished_record(method, grpo, paths, argv, job, before, previous, heldout, guard_task, max_tokens, log)

    def write(records, overrides, timings, missing) -> dict[str, Any]:
        stages.refuse_empty_collect(config, out, records, missing)
        refresh_heldout(records, heldout, max_tokens)
        measure_shortcuts(records, guard_task)
        return write_outputs(out, config, device, records, overrides, started, missing, timings)

    steps = stages.DemoSteps(
        fresh_warm_start=lambda seed_dir, seed: _fresh_warm_start(config, seed_dir, seed,
                                                                  read_problems(data["warm"]), log),
        evaluate=lambda model_dir: heldout_scores(model_dir, heldout, max_tokens),
        describe_warm=lambda seed, warm, before: (
            f"held-out chrF primal {before['primal_chrf']:.1f} dual {before['dual_chrf']:.1f}, "
            f"BLEU primal {before['primal_bleu']:.1f} dual {before['dual_bleu']:.1f}"),
        warm_record=warm_record,
        command=lambda method, grpo, warm_dir, run_dir, start: method_command(config, device, method, grpo, warm_dir,
                                                                               data, run_dir, start),
        finish=finish,
        write_outputs=write,
        tmp_prefix="dvt",
    )
    records, results = stages.run_stages(config, device, rl_methods, steps, continuation, log)
    if config.incentive_pairs:
        results["incentive"] = incentives(config, out, heldout, guard_task, device, log)
        results = write_outputs(out, config, device, records, results["config"]["main_ppo_overrides"], started,
                                results["missing"], results.get("timings"), results["incentive"])
    log("\n" + format_table(results))
    log(f"\nresults: {out / 'results.json'}")
    return results


def _fresh_warm_start(config: TranslationDemoConfig, seed_dir: Path, seed: int, problems, log) -> WarmStartResult:
    log(f"[seed {seed}] building the tiny model and warm-starting it on {len(problems)} pairs, both directions")
    corpus = [p.primal.messages[-1]["content"] + " " + p.primal.target for p in problems]
    corpus += [d.messages[-1]["content"] for p in problems for d in p.duals]
    model_dir = build_tiny_lm(seed_dir / "init", corpus=corpus, vocab_size=config.model.vocab_size,
                              hidden_size=config.model.hidden_size, num_layers=config.model.num_layers,
                              num_heads=config.model.num_heads, max_position_embeddings=256, seed=seed)
    task = task_of(problems)
    extra = recipe_examples(task, problems, config.warm.recipe, seed)
    if extra[PRIMAL] or extra[DUAL]:
        log(f"[seed {seed}] warm-start recipe {config.warm.recipe}: {len(extra[PRIMAL])} primal copies, "
            f"{len(extra[DUAL])} copy-through duals")
    warm = warm_start(
        model_dir, seed_dir / "warm_start", task, examples_of(problems, PRIMAL),
        examples_of(problems, DUAL), replace(config.warm, seed=seed),
        progress=lambda r: log(f"[seed {seed}] warm start step {r['step']} ({r['phase']}): loss {r['loss']:.3f} "
                               f"dev chrF>=0.5 primal {r['dev_primal']:.2f} dual {r['dev_dual']:.2f}"),
        primal_extra=extra[PRIMAL], dual_extra=extra[DUAL],
    )
    (seed_dir / "warm_start" / "model_config.json").write_text(json.dumps(asdict(config.model)))
    return warm


def _finished_record(method, grpo, paths, argv, job, before, previous: stages.PreviousStage | None, heldout, guard_task,
                     max_new_tokens: int, log) -> RunRecord:
    """A finished job's record: chrF/BLEU curves (joined over stages), guard rates, held-out after."""
    record = stages.base_record(method, grpo, job, previous, paths, argv, before["primal_chrf"] / 100,
                         before["dual_chrf"] / 100)
    record.curve = val_curve(job.steps, PRIMAL_SOURCE)  # mean sentence chrF (the `reward` of compute_score)
    record.dual_curve = val_curve(job.steps, DUAL_SOURCE)
    bleu_curve = metric_curve(job.steps, PRIMAL_SOURCE, "bleu")
    if previous is not None:
        record.curve = stages.joined_curve(previous.record.curve, record.curve)
        record.dual_curve = stages.joined_curve(previous.record.dual_curve, record.dual_curve)
        bleu_curve = stages.joined_curve([tuple(x) for x in previous.record.detail.get("bleu_curve", [])], bleu_curve)
    record.detail.update(before=before, bleu_curve=bleu_curve, guards=guard_rates(job.steps))
    record.reward_rate = record.detail["guards"]["reward"]
    final = stages.final_checkpoint(paths.checkpoints)
    if final is not None:
        after = heldout_scores(final, heldout, max_new_tokens)
        record.primal_after, record.dual_after = after["primal_chrf"] / 100, after["dual_chrf"] / 100
        record.detail.update(after=after, final_checkpoint=str(final))
    measure_shortcuts([record], guard_task)
    log(f"[seed {grpo.seed}] {method}: {record.status} in {job.wall_s:.0f}s; held-out chrF "
        f"{before['primal_chrf']:.1f} -> {_fmt(record.primal_after, 100, 1)}; the guards' verdicts on its rollouts: "
        + shortcut_summary(record.detail["shortcuts"]))
    return record


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{scale * value:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def summarize(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Per method: held-out corpus chrF/BLEU per seed and mean (before, after), last-3 validation
    means, guard rates, curves. Statistics are over the finished runs (None for the others, whose
    measurements stay in `runs`), as in the two-sum demo."""
    out: dict[str, Any] = {}
    for method in METHODS:
        runs = sorted((r for r in records if r.method == method), key=lambda r: r.seed)
        if not runs:
            continue

        stats = partial(finished_stats, runs)
        after = [r.detail.get("after") or {} for r in runs]
        before = [r.detail.get("before") or {} for r in runs]
        out[method] = {
            "seeds": [r.seed for r in runs],
            "status": [r.status for r in runs],
            **{f"{key}_before": stats([b.get(key) for b in before])
               for key in ("primal_chrf", "primal_bleu", "dual_chrf", "dual_bleu")},
            **{f"{key}_after": stats([a.get(key) for a in after])
               for key in ("primal_chrf", "primal_bleu", "dual_chrf", "dual_bleu", "primal_rejected")},
            "val_chrf_last3": stats([None if not r.curve else 100 * last3(r.curve) for r in runs]),
            "val_bleu_last3": stats([None if not r.detail.get("bleu_curve") else
                                     100 * last3([tuple(x) for x in r.detail["bleu_curve"]]) for r in runs]),
            **{f"train_{g}": stats([(r.detail.get("guards") or {}).get(g) for r in runs])
               for g in (*GUARD_METRICS, "gold_acc", "reward", "score")},
            **{f"shortcut_{key}": stats([(r.detail.get("shortcuts") or {}).get("overall", {}).get(key) for r in runs])
               for key in SHORTCUT_KEYS},
            "val_chrf_gain_last3": stats([None if not r.curve else 100 * (last3(r.curve) - r.curve[0][1])
                                          for r in runs]),
            "wall_s": stats([r.wall_s for r in runs]),
            "curves": {str(r.seed): r.curve for r in runs},
            "runs": [asdict(r) for r in runs],
        }
    return out


def oracle_share(results: Mapping[str, Any], method: str, gain_key: str) -> float | None:
    """`method`'s mean gain as a share of the oracle's (same warm starts, same budget), or None."""
    methods = results["methods"]
    gain = _mean_gain(methods.get(method), gain_key)
    oracle = _mean_gain(methods.get("oracle"), gain_key)
    if gain is None or oracle is None or oracle <= 0:
        return None
    return gain / oracle


def _mean_gain(summary: Mapping[str, Any] | None, gain_key: str) -> float | None:
    if not summary:
        return None
    if gain_key == "corpus":
        before, after = summary["primal_chrf_before"]["mean"], summary["primal_chrf_after"]["mean"]
        return None if before is None or after is None else after - before
    return summary["val_chrf_gain_last3"]["mean"]


def format_table(results: Mapping[str, Any]) -> str:
    """Markdown table of the means over seeds: held-out chrF/BLEU, the gain as a share of the
    oracle's, and the shortcut rates of the training rollouts (the guards' verdicts, defaults on)."""
    def cell(value, digits=1, scale=1.0):
        return "-" if value is None else f"{scale * value:.{digits}f}"

    lines = ["| method | seeds | chrF before | chrF after | change | share of oracle's change | BLEU after "
             "| val chrF last 3 (gain) | share of oracle's (last 3) | dual chrF after | near-copy % | wrong language % "
             "| partial copy % | rejected %, last 4 steps | held-out answers rejected % (greedy, after) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, s in results["methods"].items():
        b, a = s["primal_chrf_before"]["mean"], s["primal_chrf_after"]["mean"]
        rl = method != "warm_start"
        gain3 = s["val_chrf_gain_last3"]["mean"]
        last3_text = "-" if s["val_chrf_last3"]["mean"] is None else (
            f"{s['val_chrf_last3']['mean']:.1f} ({gain3:+.1f})" if gain3 is not None else cell(s["val_chrf_last3"]["mean"]))
        shortcut = [s.get(f"shortcut_{key}", {}).get("mean") for key in
                    ("near_copy", "wrong_language", "partial_copy", "rejected_last")]
        lines.append(" | ".join([
            f"| {method}", seed_count(s), cell(b), cell(a), cell(None if a is None or b is None else a - b),
            cell(oracle_share(results, method, "corpus") if rl else None, 2), cell(s["primal_bleu_after"]["mean"]),
            last3_text, cell(oracle_share(results, method, "last3") if rl else None, 2),
            cell(s["dual_chrf_after"]["mean"]), *[cell(v, 2, 100) for v in shortcut],
            cell(s.get("primal_rejected_after", {}).get("mean"))]) + " |")
    return "\n".join(lines)


def measure_shortcuts(records: Sequence[RunRecord], guard_task) -> None:
    """Put each run's training rollouts to the guards (defaults on): the same yardstick for every
    method, including the runs that did not enforce the guards. Measured again only when the
    yardstick changed (the guard task's params are kept with the rates), e.g. on a `--collect` after
    a guard default changed."""
    params = jsonable_params(guard_task)
    for record in records:
        dirs = record.detail.get("rollout_dirs")
        if record.method == "warm_start" or not dirs or record.detail.get("shortcuts", {}).get("guards") == params:
            continue
        record.detail["shortcuts"] = {**shortcut_rates([Path(d) for d in dirs], guard_task), "guards": params}


def jsonable_params(task) -> dict[str, Any]:
    """The task's params as they read back from JSON (the yardstick a measurement was made with)."""
    return json.loads(json.dumps(dict(task.params), default=str))


def refresh_heldout(records: Sequence[RunRecord], heldout, max_new_tokens: int) -> None:
    """Held-out scores of finished runs saved before a measure existed (`primal_rejected`), from their
    final checkpoint, so that a `--collect` gives every run the same columns."""
    for record in records:
        after, final = record.detail.get("after"), record.detail.get("final_checkpoint")
        if record.method == "warm_start" or not after or "primal_rejected" in after or not final:
            continue
        if Path(final).is_dir():
            record.detail["after"] = heldout_scores(Path(final), heldout, max_new_tokens)


def incentives(config: TranslationDemoConfig, out: Path, heldout, guard_task, device: str, log) -> dict[str, Any]:
    """Per seed's warm start: what the DuPO reward pays each kind of shortcut answer, guards on and off
    (`translation_incentive.py`), cached beside the warm start."""
    from dupo_verl.demo.translation_incentive import shortcut_incentive
    from dupo_verl.scoring import DualOptions

    pairs = [(p.duals[0].target, p.primal.target) for p in heldout[: config.incentive_pairs]]
    options = DualOptions(dual_samples=config.grpo.dual_samples, dual_temperature=config.grpo.dual_temperature,
                          dual_max_tokens=config.grpo.dual_max_tokens, hybrid_weight=0.0)
    found: dict[str, Any] = {}
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        warm = stages.reusable_warm_start(config, out / f"seed{seed}", seed)
        if warm is None:
            continue
        cache = warm.model_dir / f"incentive_{len(pairs)}.json"
        try:
            found[str(seed)] = json.loads(cache.read_text())
            continue
        except (OSError, ValueError):
            pass
        log(f"[seed {seed}] what the reward pays each shortcut, {len(pairs)} held-out pairs, guards on and off")
        found[str(seed)] = shortcut_incentive(warm.model_dir, guard_task, pairs, GUARDS_OFF, options, device)
        cache.write_text(json.dumps(found[str(seed)], indent=2))
    return found


def write_outputs(out: Path, config: TranslationDemoConfig, device: str, records, overrides, started, missing,
                  timings: Mapping[str, Any] | None = None, incentive: Mapping[str, Any] | None = None):
    cfg = stages.config_record(config, device, overrides)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    results = {"config": cfg, "methods": summarize(records), "missing": list(missing),
               "total_s": round(time.monotonic() - started, 1), "timings": dict(timings or {})}
    if incentive:
        results["incentive"] = dict(incentive)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(
        "Held-out English -> Dupish, greedy, sacrebleu corpus chrF / BLEU (means over seeds); guard rates are "
        "shares of the training rollouts:\n\n" + format_table(results) + "\n"
        + "".join(f"\nWhat the DuPO reward pays each answer (seed {seed}'s warm start as the dual, greedy):\n\n"
                  + format_incentive(table) + "\n" for seed, table in (incentive or {}).items()))
    (out / "per_seed.md").write_text(per_seed_markdown(results))
    plot(records, out / "chrf_vs_steps.png", f"translation on {device}: held-out chrF")
    return results


def plot(records: Sequence[RunRecord], path: Path, title: str) -> Path:
    """Held-out mean sentence chrF (verl's validation) against GRPO steps, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in RL_METHODS:
        curves = [r.curve for r in records if r.method == method and r.curve]
        mean = _mean_curve(curves)
        if mean:  # the legend says over how many seeds: methods may have run on fewer seeds than others
            xs, ys = zip(*mean, strict=True)
            ax.plot(xs, [100 * y for y in ys], marker="o", markersize=3,
                    label=f"{method} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
    ax.set_xlabel("GRPO step (verl main_ppo)")
    ax.set_ylabel("held-out chrF, greedy (mean over sentences)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

