"""The run loop every demo shares: per seed a warm start, then one `main_ppo` run per RL method.

A demo (two-sum, translation) says only what differs (`DemoSteps`): how a warm start is made and
scored, the main_ppo command of a method, and what a finished run measures. This module owns
what must behave the same in every demo, because hours of CPU ride on it:
- `resume` / `collect`: a warm start or run is reused only when made with the same settings
  (warm start: model and warm-start settings; run: the exact main_ppo overrides and the content of
  the data files they name, since a data file's path stays the same when its rows change);
- `continue_from`: each run starts from the final checkpoint of the same method and seed in an
  earlier output (whose warm starts are followed back to the first stage);
- a plain re-run never deletes finished runs; one run at a time per output (its lock);
- the outputs are rewritten after every run, so an interrupted grid keeps what finished.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from dupo_verl.demo import ppo
from dupo_verl.demo.launch import JobResult, own_run_lock, run_job
from dupo_verl.demo.results import RunRecord
from dupo_verl.demo.warm_start import WarmStartConfig, WarmStartResult, saved_settings

RUN_LOCK = ".main_ppo.lock"  # under the output folder: held while one of its runs trains
# Bounds of the demos' numeric options: far above any CPU-sized demo, far below exhausting memory or time.
MAX_SEED = 10**9
MAX_SEEDS = 1000
MAX_STEPS = 10**6
MAX_BATCH = 65536
MAX_RUN_TIMEOUT_S = 30 * 86400.0


@dataclass(frozen=True)
class ModelConfig:
    """The tiny Qwen2 model (head_dim = hidden_size / num_heads must be >= 32 for vLLM-CPU)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    vocab_size: int = 320

    def validate(self) -> None:
        """A tiny model's sizes (a huge one would exhaust memory building it)."""
        check_int("--hidden-size", self.hidden_size, 1, 8192)
        check_int("--num-layers", self.num_layers, 1, 128)
        check_int("--num-heads", self.num_heads, 1, min(256, max(self.hidden_size, 1)))
        check_int("vocab_size", self.vocab_size, 1, 10**6)


def check_int(option: str, value: object, low: int, high: int, note: str = "") -> None:
    """One line naming `option` unless `value` is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{option} must be an integer in [{low}, {high}]{note}, got {value!r}")


def check_number(option: str, value: object, low: float, high: float, *, low_open: bool = False,
                 note: str = "") -> None:
    """One line naming `option` unless `value` is a finite number in the interval (NaN fails every
    comparison, so `lr <= 0` alone lets it through)."""
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{_number(low)}, {_number(high)}]"
        raise ValueError(f"{option} must be a finite number in {interval}{note}, got {value!r}")


def _number(value: float) -> str:
    """A bound as a reader writes it: 2592000, not 2.592e+06."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def check_optional(option: str, value: float | None, note: str) -> None:
    """A share in (0, 1] that the command line turns off with 0 (None here)."""
    if value is not None:
        check_number(option, value, 0.0, 1.0, low_open=True, note=note)


def check_output(output: Path) -> None:
    """`--output` must be a folder or a path that can become one: an existing file there (or above
    it) would otherwise be a traceback at the first mkdir."""
    path = Path(output).absolute()
    for place in (path, *path.parents):
        if place.exists() or place.is_symlink():
            if not place.is_dir():
                where = "" if place == path else f" ({place} is a file)"
                raise ValueError(f"--output {output} is not a folder{where}; choose a folder path")
            return


def make_output(out: Path) -> None:
    """Create the output folder, an unwritable place one line naming `--output` (not a traceback)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--output {out}: cannot create it ({exc.strerror or exc})") from exc


def check_staged(config: StagedConfig) -> None:
    """The numeric options every demo shares, each named as on the command line, before any work."""
    check_output(config.output)
    check_int("--seeds", config.seeds, 1, MAX_SEEDS)
    check_int("--first-seed", config.first_seed, 0, MAX_SEED)
    config.model.validate()
    warm, grpo = config.warm, config.grpo
    check_int("--warm-max-steps", warm.max_steps, 1, 10**7)
    check_number("--warm-lr", warm.lr, 0.0, 1.0, low_open=True)
    check_number("--warm-primal-target", warm.primal_target, 0.0, 1.0, low_open=True)
    check_optional("--warm-dual-target", warm.dual_target, " (or 0: no dual-first phase)")
    check_optional("--warm-dual-min", warm.dual_min, " (or 0: no such rule)")
    check_int("--steps", grpo.steps, 1, MAX_STEPS)
    check_int("--batch-size", grpo.batch_size, 1, MAX_BATCH)
    check_int("--group-size", grpo.group_size, 2, 1024)
    check_number("--lr", grpo.lr, 0.0, 1.0, low_open=True)
    check_int("--test-freq", grpo.test_freq, 1, MAX_STEPS)
    check_number("--run-timeout", config.run_timeout_s, 0.0, MAX_RUN_TIMEOUT_S, low_open=True)
    check_launch(config.python, config.extra_overrides)


def check_launch(python: str, overrides: Sequence[str]) -> None:
    """`--python` and `--override`, before the warm start: a bad one would fail only at main_ppo, minutes in."""
    if shutil.which(str(python)) is None:
        raise ValueError(f"--python {python!r} is not an executable interpreter")
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    for override in overrides:
        try:
            OverridesParser.create().parse_overrides([override])
        except HydraException as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"--override {override!r} is not a Hydra override (KEY=VALUE): {message}") from None


class StagedConfig(Protocol):
    """The settings the shared loop reads (both demos' config dataclasses have them)."""

    output: Path
    methods: tuple[str, ...]
    seeds: int
    first_seed: int
    model: ModelConfig
    warm: WarmStartConfig
    grpo: ppo.GRPOSettings
    python: str
    run_timeout_s: float
    extra_overrides: tuple[str, ...]
    wait_busy_s: float
    resume: bool
    collect: bool
    continue_from: Path | None


@dataclass(frozen=True)
class PreviousStage:
    """A finished run of an earlier output that a continued run starts from."""

    record: RunRecord
    checkpoint: Path  # its final HF model: the continued run's starting policy
    rollout_dirs: tuple[Path, ...]  # the rollouts of all its stages, in order
    stages: int


@dataclass(frozen=True)
class DemoSteps:
    """What one demo does at each point of the shared loop.

    `evaluate(model_dir)` scores a model on the held-out set (any value, handed back to the others);
    `warm_record(seed, warm, before)` is the `warm_start` control's record; `command(method, grpo,
    warm_dir, seed_dir, start)` gives the run's paths and main_ppo overrides; `finish(method, grpo,
    paths, argv, job, before, previous)` turns a finished job into its record; `write_outputs(records,
    overrides, timings, missing)` rewrites config.json and the results.
    """

    fresh_warm_start: Callable[[Path, int], WarmStartResult]
    evaluate: Callable[[Path], Any]
    describe_warm: Callable[[int, WarmStartResult, Any], str]
    warm_record: Callable[[int, WarmStartResult, Any], RunRecord]
    command: Callable[[str, ppo.GRPOSettings, Path, Path, Path | None], tuple[ppo.RunPaths, list[str]]]
    finish: Callable[[str, ppo.GRPOSettings, ppo.RunPaths, list[str], JobResult, Any, PreviousStage | None],
                     RunRecord]
    write_outputs: Callable[[list[RunRecord], dict, dict, list[str]], dict[str, Any]]
    tmp_prefix: str = "dvd"


@dataclass(frozen=True)
class Continuation:
    """What `continue_from` starts from: per seed the first stage's warm start, per (seed, method)
    the earlier run (or why there is none). Empty without `continue_from`."""

    previous_out: Path | None = None
    warm_home: Path | None = None
    warm: dict[int, WarmStartResult | None] = field(default_factory=dict)
    stages: dict[tuple[int, str], PreviousStage | str] = field(default_factory=dict)


def plan_continuation(config: StagedConfig, rl_methods: Sequence[str],
                      check_previous: Callable[[Path], None]) -> Continuation:
    """Check `continue_from` before any work: hours of runs must not stop at a missing piece, so every
    missing warm start and run is listed at once (only `collect` goes on without them)."""
    if not config.continue_from:
        return Continuation()
    previous_out = Path(config.continue_from).resolve()
    check_previous(previous_out)
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    warm_home = warm_start_home(previous_out)
    warm = {seed: reusable_warm_start(config, warm_home / f"seed{seed}", seed) for seed in seeds}
    stages = {(seed, method): previous_stage(previous_out / f"seed{seed}" / method)
              for seed in seeds for method in rl_methods}
    problems = [v for v in stages.values() if isinstance(v, str)]
    problems += [f"no warm start made with these model and warm-start settings in "
                 f"{warm_home / f'seed{seed}' / 'warm_start'}" for seed, found in warm.items() if found is None]
    if problems and not config.collect:
        raise ValueError("--continue-from: " + "; ".join(problems))
    return Continuation(previous_out, warm_home, warm, stages)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_stages(config: StagedConfig, device: str, rl_methods: Sequence[str], steps: DemoSteps,
               continuation: Continuation, log: Callable[[str], None]) -> tuple[list[RunRecord], dict[str, Any]]:
    """Every seed's warm start and runs, reusing what `resume`/`collect`/`continue_from` allow;
    returns the records and the last `write_outputs` result."""
    out = Path(config.output).resolve()
    previous_out, warm_home = continuation.previous_out, continuation.warm_home or out
    previous_warm, previous_stages = continuation.warm, continuation.stages
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    records: list[RunRecord] = []
    overrides: dict[str, list[str]] = {}
    timings: dict[str, Any] = {"per_seed": {}}
    missing: list[str] = []  # with `collect`: what the output folder lacks (not in the results)
    reuse = config.resume or config.collect
    for seed in seeds:
        seed_dir = out / f"seed{seed}"
        t0 = time.monotonic()
        if previous_out is not None:
            warm = previous_warm[seed]
        else:
            warm = reusable_warm_start(config, seed_dir, seed) if reuse else None
        if warm is None and config.collect:
            missing.append(f"seed{seed}/warm_start")
            log(f"[seed {seed}] no warm start made with these settings in {warm_home / f'seed{seed}'}: seed skipped")
            continue
        if warm is None:
            warm = steps.fresh_warm_start(seed_dir, seed)
        else:
            log(f"[seed {seed}] reusing the warm start in {warm.model_dir}")
        before = steps.evaluate(warm.model_dir)
        log(f"[seed {seed}] warm start: {warm.steps} steps in {warm.wall_s:.0f}s ({warm.stopped_because}); "
            + steps.describe_warm(seed, warm, before))
        seed_timing = {"warm_start_s": round(time.monotonic() - t0, 1), "warm_start_steps": warm.steps}
        timings["per_seed"][str(seed)] = seed_timing
        if "warm_start" in config.methods:
            records.append(steps.warm_record(seed, warm, before))
        for method in rl_methods:
            grpo = replace(config.grpo, seed=seed)
            previous = previous_stages.get((seed, method))
            if isinstance(previous, str):  # only with `collect`: otherwise refused before any run
                missing.append(f"seed{seed}/{method}")
                log(f"[seed {seed}] {method}: cannot continue, {previous}: skipped")
                continue
            if previous is not None:
                grpo = replace(grpo, data_seed=seed + 1000 * previous.stages)  # new prompt order per stage
            paths, argv = steps.command(method, grpo, warm.model_dir, seed_dir / method,
                                        previous.checkpoint if previous else None)
            overrides[f"{method}/seed{seed}"] = argv
            digest = data_digest(paths)
            done = finished_run(paths.workdir, argv, digest, log) if reuse else None
            if done is None and config.collect:
                missing.append(f"seed{seed}/{method}")
                log(f"[seed {seed}] {method}: no finished run with these settings in {paths.workdir}: skipped")
                continue
            if done is not None:
                log(f"[seed {seed}] {method}: reusing the finished run in {paths.workdir}")
                records.append(done)
                continue
            job = launch_main_ppo(config, device, method, grpo, paths, argv, log, steps.tmp_prefix)
            record = steps.finish(method, grpo, paths, argv, job, before, previous)
            record.detail["data_digest"] = digest
            (paths.workdir / "run.json").write_text(json.dumps(asdict(record), indent=2, default=str))
            records.append(record)
            seed_timing[f"{method}_s"] = record.wall_s
            steps.write_outputs(records, overrides, timings, missing)
    return records, steps.write_outputs(records, overrides, timings, missing)


# Ray's own start-up deadline (30 s, not configurable) passes on an overloaded machine before any
# training step: the run never began, so it is started again instead of reported as failed.
RAY_START_FAILURE = "The current node timed out during startup"
RAY_START_ATTEMPTS = 3


def ray_failed_to_start(job: JobResult) -> bool:
    """Whether `job` died in Ray's start-up (nothing trained, no step logged)."""
    return not job.ok and not job.timed_out and not job.steps and RAY_START_FAILURE in job.tail(20000)


# Ray's memory monitor kills workers when the machine runs low (another job sharing its memory)
RAY_MEMORY_KILL = "killed due to the node running low on memory"


def failure_hint(job: JobResult) -> str:
    """What a user can do about a failed run, when its log says (else "")."""
    log_text = job.log_path.read_text(errors="replace") if job.log_path.exists() else ""
    if RAY_MEMORY_KILL in log_text:  # anywhere: Ray reports it mid-log, then the run's teardown follows
        return ("Ray's memory monitor killed the run's workers: the machine ran low on memory (is another "
                "training job or test run sharing it?); free memory and rerun with --resume, which trains "
                "only this run again")
    return ""


# what stays of a run that is trained again (a timeout, a crash): its logs and record, not its
# checkpoints or rollouts
UNFINISHED_KEPT = ("main_ppo.log", "metrics.jsonl", "steps.jsonl", "run.json")
UNFINISHED_DIR = "unfinished"


def keep_unfinished_run(run_dir: Path, log: Callable[[str], None]) -> Path | None:
    """Copy an earlier, unfinished run's logs and record to `<seed>/unfinished/<method>-<time>/`
    before its folder is cleared for a new run, so why it failed is never lost."""
    files = [run_dir / name for name in UNFINISHED_KEPT if (run_dir / name).is_file()]
    if not files:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(max(f.stat().st_mtime for f in files)))
    base = run_dir.parent / UNFINISHED_DIR / f"{run_dir.name}-{stamp}"
    dest = next(d for n in range(1000) if not (d := base.with_name(base.name + (f"-{n}" if n else ""))).exists())
    dest.mkdir(parents=True)  # never into an earlier kept copy
    for f in files:
        shutil.copy2(f, dest / f.name)
    log(f"the earlier unfinished run in {run_dir} is trained again; its logs are kept in {dest}")
    return dest


def launch_main_ppo(config: StagedConfig, device: str, method: str, grpo: ppo.GRPOSettings, paths: ppo.RunPaths,
                    argv: Sequence[str], log: Callable[[str], None], tmp_prefix: str = "dvd") -> JobResult:
    """One `python -m verl.trainer.main_ppo` run in a fresh `paths.workdir`; its per-step logs are
    also written to `steps.jsonl` there. A run whose Ray did not start is started again (up to
    `RAY_START_ATTEMPTS` in all); the failed attempts' logs are kept beside the run's."""
    run_dir = paths.workdir
    # only our own runs are waited for: another demo writing this output (not any main_ppo around)
    with own_run_lock(Path(config.output) / RUN_LOCK, config.wait_busy_s, log):
        failed_starts: list[str] = []
        for attempt in range(1, RAY_START_ATTEMPTS + 1):
            tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix, dir="/tmp"))  # short: AF_UNIX socket paths
            env = {**ppo.environment(paths, tmp, device), "DUPO_DEMO_COIN_SEED": str(grpo.seed)}
            try:
                if run_dir.exists():
                    if attempt == 1:
                        keep_unfinished_run(run_dir, log)
                    shutil.rmtree(run_dir)
                run_dir.mkdir(parents=True)
                for number, text in enumerate(failed_starts, start=1):
                    (run_dir / f"main_ppo.ray_start_failed_{number}.log").write_text(text)
                log(f"[seed {grpo.seed}] {method}: main_ppo, {grpo.steps} GRPO steps (log: {run_dir / 'main_ppo.log'})")
                job = run_job([config.python, "-m", "verl.trainer.main_ppo", *argv], cwd=run_dir, env=env,
                              timeout_s=config.run_timeout_s, log_path=run_dir / "main_ppo.log",
                              metrics_path=paths.metrics)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if not ray_failed_to_start(job) or attempt == RAY_START_ATTEMPTS:
                break
            failed_starts.append(job.log_path.read_text(errors="replace"))
            log(f"[seed {grpo.seed}] {method}: Ray did not start within its 30 s deadline (an overloaded "
                f"machine?); nothing was trained, starting again ({attempt + 1} of {RAY_START_ATTEMPTS})")
            time.sleep(10)
    (run_dir / "steps.jsonl").write_text(
        "".join(json.dumps({"step": s, **m}) + "\n" for s, m in sorted(job.steps.items())))
    if not job.ok:
        log(f"[seed {grpo.seed}] {method}: main_ppo {job_status(job)}:\n{job.failure_report(3000)}")
        if hint := failure_hint(job):
            log(f"[seed {grpo.seed}] {method}: {hint}")
    return job


def base_record(method: str, grpo: ppo.GRPOSettings, job: JobResult, previous: PreviousStage | None,
                paths: ppo.RunPaths, argv: Sequence[str], primal_before: float, dual_before: float) -> RunRecord:
    """A run's record with what every demo keeps: status, wall time (all stages), overrides, stages."""
    record = RunRecord(method, grpo.seed, primal_before, dual_before, wall_s=round(job.wall_s, 1))
    if previous is not None:
        record.wall_s = round(job.wall_s + (previous.record.wall_s or 0.0), 1)
    record.status = job_status(job)
    rollout_dirs = (*previous.rollout_dirs, paths.rollouts) if previous else (paths.rollouts,)
    record.detail = {"rc": job.rc, "timed_out": job.timed_out, "leftover_pids": job.leftover_pids,
                     "overrides": list(argv), "stages": previous.stages + 1 if previous else 1,
                     "rollout_dirs": [str(d) for d in rollout_dirs]}
    if previous is not None:
        record.detail["continued_from"] = str(previous.checkpoint)
    return record


def job_status(job: JobResult) -> str:
    """A run's status word: ok, timed_out, or failed with its exit code."""
    if job.ok:
        return "ok"
    return "timed_out" if job.timed_out else f"failed (rc={job.rc})"


# settings that choose what a `--collect` gathers or how it runs, not how the runs were made
COLLECT_FREE = ("output", "methods", "seeds", "first_seed", "device", "python", "run_timeout_s", "wait_busy_s",
                "threads", "resume", "collect", "continue_from", "merge_results", "incentive_pairs")


def refuse_to_overwrite(out: Path, config: StagedConfig, device: str | None = None,
                        own_keys: Sequence[str] = ()) -> None:
    """Hours of finished runs are never deleted by a plain re-run: reuse them or pick another folder.
    A continued output is only reused as the continuation it is (else `--collect` would find none of
    its runs and write empty results over its config and tables); a `--collect` gathers only an output
    that holds runs, made with the same settings (`refuse_to_collect`)."""
    refuse_other_stage(out, config)
    if config.collect:
        refuse_to_collect(out, config, device, own_keys)
        return
    if config.resume or not out.is_dir():
        return
    held = sorted(p.name for p in out.glob("seed*") if p.is_dir() and any(p.iterdir()))
    if held:
        raise ValueError(
            f"{out} already holds a demo's runs ({', '.join(held)}); pass --resume to reuse the finished ones "
            "made with the same settings, or choose another --output"
        )


def refuse_to_collect(out: Path, config: StagedConfig, device: str | None, own_keys: Sequence[str]) -> None:
    """A `--collect` rewrites config.json, results and the plot from what `out` holds with the given
    settings: on a folder with none of the asked seeds, another demo's output or runs made with other
    settings it would write empty tables over the real ones, so it is refused and nothing is written.
    `device`: the resolved device (config.json records that one); `own_keys`: settings only this demo has."""
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    held = [s for s in seeds if (out / f"seed{s}").is_dir() and any((out / f"seed{s}").iterdir())]
    if not held:
        names = f"seed{seeds[0]}" if len(seeds) == 1 else f"seed{seeds[0]}..seed{seeds[-1]}"
        raise ValueError(f"--collect: nothing to collect in {out}: it holds no warm start or run of {names} "
                         "(see --output, --first-seed and --seeds)")
    try:
        recorded = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return  # no readable config: nothing was recorded to contradict
    if not isinstance(recorded, dict):
        return
    if missing := [key for key in own_keys if key not in recorded]:
        raise ValueError(f"--collect: {out} is not an output of this demo (its config.json has no "
                         f"{', '.join(missing)}: another demo's output folder?)")
    current = jsonable(asdict(config))
    if device is not None:
        current["device"] = device
    free = [k for k in COLLECT_FREE if not (k == "device" and device is not None)]
    if differ := setting_differences(recorded, current, free):
        raise ValueError(f"--collect: {out} was made with other settings ({'; '.join(differ)}); pass the "
                         "settings in its config.json, or choose another --output")


def refuse_empty_collect(config: StagedConfig, out: Path, records: Sequence[RunRecord], missing: Sequence[str]) -> None:
    """A `--collect` that found nothing made with its settings writes no empty tables over `out`'s."""
    if config.collect and not records:
        raise ValueError(f"--collect: nothing to collect in {out}: no warm start or run made with these settings "
                         f"({', '.join(missing)} missing); nothing was written")


def setting_differences(recorded: dict[str, Any], current: dict[str, Any], free: Sequence[str] = (),
                        prefix: str = "") -> list[str]:
    """`key was X there, Y here` for every setting both record with different values (nested settings
    as `grpo.steps`); a setting an older config.json lacks is not compared."""
    out = []
    for key, value in current.items():
        if key in free or key not in recorded:
            continue
        before = recorded[key]
        if isinstance(value, dict) and isinstance(before, dict):
            out += setting_differences(before, value, (), f"{prefix}{key}.")
        elif before != value:
            out.append(f"{prefix}{key} was {before!r} there, {value!r} here")
    return out


def refuse_other_stage(out: Path, config: StagedConfig) -> None:
    """`--resume`/`--collect` of an output made with `--continue-from PREV` needs that same PREV."""
    if not (config.resume or config.collect):
        return
    try:
        recorded = json.loads((out / "config.json").read_text()).get("continue_from")
    except (OSError, ValueError, AttributeError):
        return  # no readable config: nothing was recorded to contradict
    if recorded is not None and not isinstance(recorded, str):
        raise ValueError(f"{out / 'config.json'}: continue_from must be a folder path or null, got {recorded!r}")
    given = None if config.continue_from is None else Path(config.continue_from).resolve()
    if (None if recorded is None else Path(recorded).resolve()) != given:
        option = "--resume" if config.resume else "--collect"
        raise ValueError(
            f"{out} was made with --continue-from {recorded}; {option} it with --continue-from {recorded}"
            if recorded is not None
            else f"{out} was made without --continue-from; {option} it without --continue-from (or choose "
            "another --output)"
        )


def reusable_warm_start(config: StagedConfig, seed_dir: Path, seed: int) -> WarmStartResult | None:
    """The warm start already in `seed_dir` if it was made with the same model and warm-start settings."""
    folder = seed_dir / "warm_start"
    try:
        saved = json.loads((folder / "warm_start.json").read_text())
        model = json.loads((folder / "model_config.json").read_text())
    except (OSError, ValueError):
        return None
    settings = saved_settings(saved["config"]) if isinstance(saved.get("config"), dict) else None
    if settings != asdict(replace(config.warm, seed=seed)) or model != asdict(config.model):
        return None
    fields = {k: saved[k] for k in ("steps", "wall_s", "dev_primal", "dev_dual", "stopped_because", "log")}
    return WarmStartResult(model_dir=folder, **fields)


def check_same_settings(config: Any, previous_out: Path, keys: Sequence[str], what: str) -> None:
    """A continued run must train and evaluate on the data of the output it continues."""
    try:
        before = json.loads((previous_out / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--continue-from: cannot read {previous_out / 'config.json'}: {exc}") from exc
    missing = [key for key in keys if key not in before] if isinstance(before, dict) else list(keys)
    if missing:
        raise ValueError(f"--continue-from: {previous_out} is not an output of this demo (its config.json has no "
                         f"{', '.join(missing)}: another demo's output folder?)")
    for key in keys:
        if before.get(key) != getattr(config, key):
            raise ValueError(f"--continue-from: {key} was {before.get(key)!r} in {previous_out}, "
                             f"now {getattr(config, key)!r}; {what} would differ")


def warm_start_home(previous_out: Path) -> Path:
    """The output that holds the warm starts behind `previous_out`: a continued output has none of its
    own, so its `continue_from` is followed back to the first stage."""
    return stage_chain(previous_out)[-1]


def stage_chain(previous_out: Path) -> list[Path]:
    """`previous_out` and every output it continues, back to the first stage (so an output continued
    from `previous_out` is stage `len(stage_chain(previous_out)) + 1`)."""
    seen = [previous_out]
    while True:
        try:
            earlier = json.loads((seen[-1] / "config.json").read_text()).get("continue_from")
        except (OSError, ValueError) as exc:
            raise ValueError(f"--continue-from: cannot read {seen[-1] / 'config.json'}: {exc}") from exc
        if not earlier:
            return seen
        earlier = Path(earlier).resolve()
        if earlier in seen:
            raise ValueError(f"--continue-from: the outputs continue each other in a loop: {seen + [earlier]}")
        seen.append(earlier)


def previous_stage(run_dir: Path) -> PreviousStage | str:
    """The finished run in `run_dir` (an earlier output) with its final checkpoint, or why not."""
    saved = saved_run(run_dir)
    checkpoint = final_checkpoint(run_dir / "checkpoints")
    if saved is None or saved.status != "ok" or checkpoint is None:
        status = "no readable run.json" if saved is None else f"status {saved.status!r}"
        return (f"no finished run to continue in {run_dir} ({status}, "
                f"{'no' if checkpoint is None else 'a'} final checkpoint)")
    dirs = tuple(Path(d) for d in saved.detail.get("rollout_dirs", [run_dir / "rollouts"]))
    return PreviousStage(saved, checkpoint, dirs, int(saved.detail.get("stages", 1)))


def joined_curve(before: Sequence[tuple[int, float]], after: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """`after`'s points numbered on from `before`'s last step (its step 0 is `before`'s end)."""
    if not before:
        return list(after)
    shift = before[-1][0]
    return list(before) + [(shift + step, value) for step, value in after if step > 0]


def saved_run(run_dir: Path) -> RunRecord | None:
    """The record in `run_dir/run.json` (None when absent or unreadable)."""
    try:
        saved = json.loads((run_dir / "run.json").read_text())
        saved["curve"] = [tuple(x) for x in saved.get("curve", [])]
        saved["dual_curve"] = [tuple(x) for x in saved.get("dual_curve", [])]
        return RunRecord(**saved)
    except (OSError, ValueError, TypeError):
        return None


def finished_run(run_dir: Path, argv: Sequence[str], digest: str | None = None,
                 log: Callable[[str], None] = print) -> RunRecord | None:
    """The record of a finished run in `run_dir` made with the same main_ppo overrides and, when
    `digest` is given, the same data (`data_digest`). A record from before digests were kept is
    reused on its overrides alone, and the log says so."""
    saved = saved_run(run_dir)
    if saved is None or saved.status != "ok" or saved.detail.get("overrides") != list(argv):
        return None
    if digest is None:
        return saved
    kept = saved.detail.get("data_digest")
    if kept is None:
        log(f"{run_dir}: made before data digests were kept, reused on its overrides alone "
            "(delete its run.json to train it again on today's data)")
        return saved
    if kept != digest:
        log(f"{run_dir}: its data files changed since it ran (other rows or task params): trained again")
        return None
    return saved


def data_digest(paths: ppo.RunPaths) -> str:
    """A digest of what the run reads from its data files: the rows of its train and val parquet
    files (their Arrow content, so a rewrite of the same rows by another pyarrow gives the same
    digest) and the agent-loop config's bytes. Files that are absent count as absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for path in (paths.train_files, *paths.val_files, paths.agent_loop_config):
        path = Path(path)
        digest.update(f"\0{path.name}\0".encode())
        if not path.is_file():
            digest.update(b"<absent>")
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            table = table.replace_schema_metadata(None).combine_chunks()
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            digest.update(sink.getvalue().to_pybytes())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def final_checkpoint(checkpoints: Path) -> Path | None:
    """The HF model of the last saved step (`global_step_<N>/actor/huggingface`)."""
    found = sorted(checkpoints.glob("global_step_*/actor/huggingface"), key=lambda p: int(p.parts[-3].split("_")[-1]))
    found = [p for p in found if (p / "config.json").exists()]
    return found[-1] if found else None


def config_record(config: Any, device: str, run_overrides: dict[str, list[str]]) -> dict[str, Any]:
    """config.json's content: the settings, the device and the exact main_ppo overrides per run."""
    cfg = {**jsonable(asdict(config)), "device": device, "main_ppo_overrides": run_overrides}
    if config.continue_from:  # a later stage follows it back from any working directory
        cfg["continue_from"] = str(Path(config.continue_from).resolve())
    return cfg


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
