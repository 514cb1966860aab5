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
- `dupo_guards_off`: the same with `language_check=off` and `copy_threshold=0` in the rows, to show
  the shortcuts the guards close (its copy and wrong-language rates are logged all the same);
- `oracle`: `single_turn_agent`, reward = chrF against the reference (`reward_fns.compute_score`);
- `shuffled`: DuPO's rewards permuted across rollouts (`replay_agent.py`);
- `warm_start`: no RL.
Held-out: greedy sacrebleu corpus chrF and BLEU of both directions on `val_sentences` unseen
sentences, before and after; verl validates the same sentences every `test_freq` steps (mean
sentence chrF and BLEU: the curves; `last3` = mean of the last 3 validations).

The output folder is laid out as the two-sum demo's (config.json, data/, seed<k>/warm_start,
seed<k>/<method>/{main_ppo.log, metrics.jsonl, steps.jsonl, run.json}, results.json, results.md,
chrf_vs_steps.png), and `resume`, `collect` and `continue_from` mean the same: this module shares
the two-sum demo's warm start, runner, command builder and stage bookkeeping.
"""

from __future__ import annotations

import copy
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dupo_verl.demo import ppo
from dupo_verl.demo.evaluate import generate_greedy, load_model, prompt_ids
from dupo_verl.demo.examples import DUAL, PRIMAL, examples_of, read_problems, task_of
from dupo_verl.demo.launch import own_run_lock, run_job
from dupo_verl.demo.results import RunRecord, _mean_curve, val_curve
from dupo_verl.demo.tiny_lm import build_tiny_lm
from dupo_verl.demo.translation_data import SRC_LANG, TGT_LANG, prepare_pairs
from dupo_verl.demo.two_sum_data import read_rows, write_rows
from dupo_verl.demo.two_sum_demo import (
    RUN_LOCK,
    ModelConfig,
    PreviousStage,
    _final_checkpoint,
    _finished_run,
    _joined_curve,
    _previous_stage,
    _refuse_to_overwrite,
    _reusable_warm_start,
    _warm_start_home,
    resolve_device,
)
from dupo_verl.demo.warm_start import WarmStartConfig, WarmStartResult, warm_start

METHODS = ("warm_start", "dupo", "oracle", "shuffled", "dupo_guards_off")
RL_METHODS = METHODS[1:]
# the main_ppo command of each method is that of this two-sum method (its rows make the difference)
PPO_METHOD = {"dupo": "dupo", "oracle": "oracle", "shuffled": "shuffled", "dupo_guards_off": "dupo"}
PRIMAL_SOURCE = "translation/primal"
DUAL_SOURCE = "translation/dual"
VALIDATION_AGENT = "single_turn_agent"
GUARD_METRICS = ("near_copy", "wrong_language", "leaks", "no_answer")
AGENT_LOOP_YAML = """\
# Agent loops of the translation demo (the DuPO options come from +dupo.<key> overrides).
- name: dupo_agent
  _target_: dupo_verl.verl.agent_loop.DuPOAgentLoop
- name: dupo_shuffled_agent
  _target_: dupo_verl.demo.replay_agent.ReplayDuPOAgentLoop
  coin_window: {window}
"""


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
    model: ModelConfig = ModelConfig(hidden_size=128, num_layers=2, num_heads=4, vocab_size=1000)
    warm: WarmStartConfig = field(default_factory=default_warm)
    grpo: ppo.GRPOSettings = field(default_factory=default_grpo)
    device: str = "auto"
    python: str = sys.executable
    run_timeout_s: float = 1800.0
    wait_busy_s: float = 3600.0
    replay_window: int = 256  # `shuffled`: rewards drawn from this many recent rollouts
    threads: int | None = None
    resume: bool = False
    collect: bool = False
    continue_from: Path | None = None
    extra_overrides: tuple[str, ...] = ()

    def validate(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)} or all")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        for name in ("warm_sentences", "rl_sentences", "val_sentences"):
            if getattr(self, name) < 10:
                raise ValueError(f"{name} must be >= 10, got {getattr(self, name)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
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
            params.update(language_check="off", copy_threshold=0.0)
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
    return paths, argv + list(config.extra_overrides)


# ---------------------------------------------------------------------------------------------
# Held-out evaluation
# ---------------------------------------------------------------------------------------------


def heldout_scores(model_dir: Path, heldout, max_new_tokens: int) -> dict[str, float]:
    """Greedy sacrebleu corpus chrF and BLEU (0-100) of both directions on the held-out pairs."""
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
        if kind == PRIMAL:
            out["samples"] = [{"source": e.messages[-1]["content"].rsplit("\n", 1)[-1], "reply": h, "reference": e.target}
                              for e, h in list(zip(examples, hyps, strict=True))[:3]]
    return out


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


def last3(curve: Sequence[tuple[int, float]]) -> float | None:
    """Mean of the last 3 validations (fewer when there are fewer)."""
    values = [v for _, v in curve[-3:]]
    return statistics.fmean(values) if values else None


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
    device = resolve_device(config.device)
    rl_methods = [m for m in RL_METHODS if m in config.methods]
    if rl_methods and device == "cpu" and not config.collect and not ppo.cpu_support_available():
        raise RuntimeError(
            f"main_ppo on CPU needs the `{ppo.CPU_SUPPORT_MODULE}` module (verl's CPU platform): run the demo "
            "from the end-to-end environment, `.venv-e2e/bin/dupo-verl demo translation ...`"
        )
    previous_out = Path(config.continue_from).resolve() if config.continue_from else None
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    previous_stages: dict[tuple[int, str], PreviousStage | str] = {}
    previous_warm: dict[int, WarmStartResult | None] = {}
    if previous_out is not None:
        _check_same_data(config, previous_out)
        home = _warm_start_home(previous_out)
        previous_warm = {s: _reusable_warm_start(config, home / f"seed{s}", s) for s in seeds}
        previous_stages = {(s, m): _previous_stage(previous_out / f"seed{s}" / m) for s in seeds for m in rl_methods}
        problems = [v for v in previous_stages.values() if isinstance(v, str)]
        problems += [f"no warm start with these settings in {home / f'seed{s}'}" for s, w in previous_warm.items()
                     if w is None]
        if problems and not config.collect:
            raise ValueError("--continue-from: " + "; ".join(problems))
    out = Path(config.output).resolve()
    _refuse_to_overwrite(out, config)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    data = prepare_data(config, out / "data", rl_methods)
    heldout = read_problems(data["heldout"])
    records: list[RunRecord] = []
    overrides: dict[str, list[str]] = {}
    missing: list[str] = []
    reuse = config.resume or config.collect
    for seed in seeds:
        seed_dir = out / f"seed{seed}"
        warm = previous_warm[seed] if previous_out is not None else (
            _reusable_warm_start(config, seed_dir, seed) if reuse else None)
        if warm is None and config.collect:
            missing.append(f"seed{seed}/warm_start")
            log(f"[seed {seed}] no warm start made with these settings: seed skipped")
            continue
        if warm is None:
            warm = _fresh_warm_start(config, seed_dir, seed, read_problems(data["warm"]), log)
        else:
            log(f"[seed {seed}] reusing the warm start in {warm.model_dir}")
        before = heldout_scores(warm.model_dir, heldout, config.warm.max_new_tokens)
        log(f"[seed {seed}] warm start: {warm.steps} steps ({warm.stopped_because}); held-out chrF "
            f"primal {before['primal_chrf']:.1f} dual {before['dual_chrf']:.1f}, BLEU primal "
            f"{before['primal_bleu']:.1f} dual {before['dual_bleu']:.1f}")
        if "warm_start" in config.methods:
            records.append(RunRecord("warm_start", seed, before["primal_chrf"] / 100, before["dual_chrf"] / 100,
                                     wall_s=warm.wall_s, detail={"before": before, "after": before,
                                                                 "warm_start": warm.to_dict()}))
        for method in rl_methods:
            grpo = replace(config.grpo, seed=seed)
            previous = previous_stages.get((seed, method))
            if isinstance(previous, str):
                missing.append(f"seed{seed}/{method}")
                log(f"[seed {seed}] {method}: cannot continue, {previous}: skipped")
                continue
            if previous is not None:
                grpo = replace(grpo, data_seed=seed + 1000 * previous.stages)
            paths, argv = method_command(config, device, method, grpo, warm.model_dir, data, seed_dir / method,
                                         start=previous.checkpoint if previous else None)
            overrides[f"{method}/seed{seed}"] = argv
            done = _finished_run(paths.workdir, argv) if reuse else None
            if done is None and config.collect:
                missing.append(f"seed{seed}/{method}")
                log(f"[seed {seed}] {method}: no finished run with these settings: skipped")
                continue
            if done is not None:
                log(f"[seed {seed}] {method}: reusing the finished run in {paths.workdir}")
                records.append(done)
                continue
            records.append(_run_method(config, method, grpo, paths, argv, heldout, before, log, previous, device))
            write_outputs(out, config, device, records, overrides, started, missing)
    results = write_outputs(out, config, device, records, overrides, started, missing)
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
    warm = warm_start(
        model_dir, seed_dir / "warm_start", task_of(problems), examples_of(problems, PRIMAL),
        examples_of(problems, DUAL), replace(config.warm, seed=seed),
        progress=lambda r: log(f"[seed {seed}] warm start step {r['step']} ({r['phase']}): loss {r['loss']:.3f} "
                               f"dev chrF>=0.5 primal {r['dev_primal']:.2f} dual {r['dev_dual']:.2f}"),
    )
    (seed_dir / "warm_start" / "model_config.json").write_text(json.dumps(asdict(config.model)))
    return warm


def _check_same_data(config: TranslationDemoConfig, previous_out: Path) -> None:
    try:
        before = json.loads((previous_out / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--continue-from: cannot read {previous_out / 'config.json'}: {exc}") from exc
    for key in ("warm_sentences", "rl_sentences", "val_sentences", "data_seed"):
        if before.get(key) != getattr(config, key):
            raise ValueError(f"--continue-from: {key} was {before.get(key)!r} in {previous_out}, "
                             f"now {getattr(config, key)!r}; the sentences would differ")


def _run_method(config, method, grpo, paths, argv, heldout, before, log, previous, device) -> RunRecord:
    run_dir = paths.workdir
    tmp = Path(tempfile.mkdtemp(prefix="dvt", dir="/tmp"))  # short: AF_UNIX socket paths
    env = {**ppo.environment(paths, tmp, device), "DUPO_DEMO_COIN_SEED": str(grpo.seed)}
    try:
        with own_run_lock(Path(config.output) / RUN_LOCK, config.wait_busy_s, log):
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            log(f"[seed {grpo.seed}] {method}: main_ppo, {grpo.steps} GRPO steps (log: {run_dir / 'main_ppo.log'})")
            job = run_job([config.python, "-m", "verl.trainer.main_ppo", *argv], cwd=run_dir, env=env,
                          timeout_s=config.run_timeout_s, log_path=run_dir / "main_ppo.log", metrics_path=paths.metrics)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (run_dir / "steps.jsonl").write_text("".join(json.dumps({"step": s, **m}) + "\n" for s, m in sorted(job.steps.items())))
    record = RunRecord(method, grpo.seed, before["primal_chrf"] / 100, before["dual_chrf"] / 100,
                       wall_s=round(job.wall_s, 1))
    record.curve = val_curve(job.steps, PRIMAL_SOURCE)  # mean sentence chrF (the `reward` of compute_score)
    record.dual_curve = val_curve(job.steps, DUAL_SOURCE)
    bleu_curve = metric_curve(job.steps, PRIMAL_SOURCE, "bleu")
    if previous is not None:
        record.curve = _joined_curve(previous.record.curve, record.curve)
        record.dual_curve = _joined_curve(previous.record.dual_curve, record.dual_curve)
        bleu_curve = _joined_curve([tuple(x) for x in previous.record.detail.get("bleu_curve", [])], bleu_curve)
        record.wall_s = round(job.wall_s + (previous.record.wall_s or 0.0), 1)
    rollout_dirs = (*previous.rollout_dirs, paths.rollouts) if previous else (paths.rollouts,)
    record.detail = {"before": before, "bleu_curve": bleu_curve, "guards": guard_rates(job.steps),
                     "rc": job.rc, "timed_out": job.timed_out, "leftover_pids": job.leftover_pids,
                     "overrides": list(argv), "stages": previous.stages + 1 if previous else 1,
                     "rollout_dirs": [str(d) for d in rollout_dirs]}
    record.reward_rate = record.detail["guards"]["reward"]
    if previous is not None:
        record.detail["continued_from"] = str(previous.checkpoint)
    final = _final_checkpoint(paths.checkpoints)
    if final is not None:
        after = heldout_scores(final, heldout, config.warm.max_new_tokens)
        record.primal_after, record.dual_after = after["primal_chrf"] / 100, after["dual_chrf"] / 100
        record.detail.update(after=after, final_checkpoint=str(final))
    if not job.ok:
        record.status = "timed_out" if job.timed_out else f"failed (rc={job.rc})"
        log(f"[seed {grpo.seed}] {method}: main_ppo {record.status}; last lines:\n{job.tail(3000)}")
    (run_dir / "run.json").write_text(json.dumps(asdict(record), indent=2, default=str))
    guards = record.detail["guards"]
    log(f"[seed {grpo.seed}] {method}: {record.status} in {job.wall_s:.0f}s; held-out chrF "
        f"{before['primal_chrf']:.1f} -> {_fmt(record.primal_after, 100, 1)}; near-copy "
        f"{_fmt(guards['near_copy'])}, wrong language {_fmt(guards['wrong_language'])}")
    return record


def _fmt(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{scale * value:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def summarize(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Per method: held-out corpus chrF/BLEU per seed and mean (before, after), last-3 validation
    means, guard rates, curves."""
    def stats(values):
        present = [v for v in values if v is not None]
        return {"per_seed": list(values), "mean": statistics.fmean(present) if present else None}

    out: dict[str, Any] = {}
    for method in METHODS:
        runs = sorted((r for r in records if r.method == method), key=lambda r: r.seed)
        if not runs:
            continue
        after = [r.detail.get("after") or {} for r in runs]
        before = [r.detail.get("before") or {} for r in runs]
        out[method] = {
            "seeds": [r.seed for r in runs],
            "status": [r.status for r in runs],
            **{f"{key}_before": stats([b.get(key) for b in before])
               for key in ("primal_chrf", "primal_bleu", "dual_chrf", "dual_bleu")},
            **{f"{key}_after": stats([a.get(key) for a in after])
               for key in ("primal_chrf", "primal_bleu", "dual_chrf", "dual_bleu")},
            "val_chrf_last3": stats([None if not r.curve else 100 * last3(r.curve) for r in runs]),
            "val_bleu_last3": stats([None if not r.detail.get("bleu_curve") else
                                     100 * last3([tuple(x) for x in r.detail["bleu_curve"]]) for r in runs]),
            **{f"train_{g}": stats([(r.detail.get("guards") or {}).get(g) for r in runs])
               for g in (*GUARD_METRICS, "gold_acc", "reward", "score")},
            "wall_s": stats([r.wall_s for r in runs]),
            "curves": {str(r.seed): r.curve for r in runs},
            "runs": [asdict(r) for r in runs],
        }
    return out


def format_table(results: Mapping[str, Any]) -> str:
    """Markdown table of the means over seeds."""
    def cell(value, digits=1):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| method | seeds | chrF before | chrF after | change | BLEU after | val chrF last 3 | dual chrF after "
             "| near-copy % | wrong language % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, s in results["methods"].items():
        b, a = s["primal_chrf_before"]["mean"], s["primal_chrf_after"]["mean"]
        nc, wl = s["train_near_copy"]["mean"], s["train_wrong_language"]["mean"]
        lines.append(" | ".join([
            f"| {method}", str(len(s["seeds"])), cell(b), cell(a), cell(None if a is None or b is None else a - b),
            cell(s["primal_bleu_after"]["mean"]), cell(s["val_chrf_last3"]["mean"]), cell(s["dual_chrf_after"]["mean"]),
            cell(None if nc is None else 100 * nc, 2), cell(None if wl is None else 100 * wl, 2)]) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, config: TranslationDemoConfig, device: str, records, overrides, started, missing):
    cfg = {**_jsonable(asdict(config)), "device": device, "main_ppo_overrides": overrides}
    if config.continue_from:
        cfg["continue_from"] = str(Path(config.continue_from).resolve())
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    results = {"config": cfg, "methods": summarize(records), "missing": list(missing),
               "total_s": round(time.monotonic() - started, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(
        "Held-out English -> Dupish, greedy, sacrebleu corpus chrF / BLEU (means over seeds); guard rates are "
        "shares of the training rollouts:\n\n" + format_table(results) + "\n")
    plot(records, out / "chrf_vs_steps.png", f"translation on {device}: held-out chrF ({config.seeds} seed(s))")
    return results


def plot(records: Sequence[RunRecord], path: Path, title: str) -> Path:
    """Held-out mean sentence chrF (verl's validation) against GRPO steps, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in RL_METHODS:
        mean = _mean_curve([r.curve for r in records if r.method == method and r.curve])
        if mean:
            xs, ys = zip(*mean, strict=True)
            ax.plot(xs, [100 * y for y in ys], marker="o", markersize=3, label=method)
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
