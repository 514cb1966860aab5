"""One dataset row inside verl: its options, task, gold label and DuPO score.

Shared by the agent loop and the reward manager. Options come from three places, later ones
winning: `DualOptions` defaults, the `dupo:` mapping of the agent-loop YAML entry, and
`+dupo.<key>=...` overrides in the trainer config.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from dupo_verl.plain import to_plain
from dupo_verl.scoring import (
    METRIC_KEYS,
    DualOptions,
    DuPOReward,
    GenerateFn,
    checked_dual_reply,
    require_dual_mode,
    score_response,
    task_from_info,
)
from dupo_verl.tasks import DualQuestion, DualTask, LikelihoodUnsupported
from reward_fns.scoring import gold_answers

logger = logging.getLogger(__name__)

# What a malformed `extra_info['dupo']` can raise (a number past the float range: OverflowError; a
# task module that is missing or fails to import: ImportError).
_ROW_ERRORS = (KeyError, TypeError, ValueError, OverflowError, ImportError)


def resolve_options(yaml_kwargs: Mapping[str, Any] | None, trainer_config: Any) -> DualOptions:
    """Defaults < the agent-loop YAML's `dupo:` mapping < `+dupo.<key>` from the trainer config.

    Both sources hold plain Hydra values (ints for floats, null, strings); `DualOptions` checks
    their types and ranges.
    """
    merged: dict[str, Any] = {}
    sources = (("the agent-loop YAML's dupo", yaml_kwargs), ("+dupo", _config_get(trainer_config, "dupo")))
    for where, value in sources:
        try:
            merged.update(_plain(value))
        except TypeError:
            raise ValueError(f"{where} must be a mapping of DuPO options, got {value!r:.100}") from None
    return DualOptions.from_mapping(merged)


def rollout_agent(config: Any) -> Mapping[str, Any]:
    """`actor_rollout_ref.rollout.agent` of a trainer config ({} where any level is unset)."""
    return (((config.get("actor_rollout_ref") or {}).get("rollout") or {}).get("agent")) or {}


def agent_yaml_dupo(config: Any) -> Any:
    """The `dupo:` mapping of the `dupo_agent` entry in the job's agent-loop YAML, or None.

    The `dupo` reward manager and the trainers read it too, so every part of a job judges with the
    options `dupo_agent` uses (a `judge: anchored` there reaches the frozen judge).
    """
    path = rollout_agent(config).get("agent_loop_config_path")
    if not path or not Path(str(path)).is_file():
        return None
    entries = OmegaConf.load(str(path))
    for entry in entries if isinstance(entries, ListConfig) else []:
        if isinstance(entry, DictConfig) and entry.get("name") == "dupo_agent":
            return entry.get("dupo")
    return None


def row_task(extra_info: Any, data_source: Any = None) -> tuple[DualTask, list[DualQuestion]]:
    """The task and dual questions of one row, with an error that names the row when malformed."""
    try:
        info = _plain(extra_info)
    except TypeError as exc:
        raise ValueError(f"row data_source={data_source!r}: extra_info must be a mapping: {exc}") from None
    where = f"row index={info.get('index', '?')} data_source={data_source!r}"
    if "dupo" not in info:
        raise ValueError(
            f"{where}: extra_info['dupo'] is missing; DuPO rows are written by `dupo-verl prepare` "
            "(extra_info.dupo = {task, params, duals})"
        )
    try:
        return task_from_info(info["dupo"])
    except _ROW_ERRORS as exc:
        raise ValueError(f"{where}: bad extra_info['dupo']: {exc}") from exc


def check_rows_dual_mode(rows: Iterable[Mapping[str, Any]], options: DualOptions, source: str) -> int:
    """Raise `LikelihoodUnsupported` naming the first row whose task, or one of whose hidden values,
    cannot be asked in `options.dual_mode`; the number of DuPO rows checked otherwise.

    Run over a whole dataset at start-up, so a task that cannot be scored this way stops the job
    before any worker starts, not at the step that first samples it. Rows without
    `extra_info['dupo']`, or malformed ones, are left to `row_task`, which names them when scored.
    """
    if options.dual_mode != "likelihood":
        return 0
    checked: set[int] = set()
    count = 0
    for position, row in enumerate(rows):
        try:
            info = _plain(row.get("extra_info"))
        except TypeError:
            continue
        if not isinstance(info.get("dupo"), Mapping):
            continue
        try:
            task, duals = task_from_info(info["dupo"])
        except _ROW_ERRORS:
            continue
        try:
            if id(task) not in checked:
                require_dual_mode(task, options)
                checked.add(id(task))
            for dual in duals:
                checked_dual_reply(task, dual)
        except Exception as exc:  # any fault of these task hooks would fail this row at every step
            where = f"{source} row {position} (index={info.get('index', '?')}, data_source={row.get('data_source')!r})"
            reason = str(exc) if isinstance(exc, LikelihoodUnsupported) else f"{type(exc).__name__}: {exc}"
            raise LikelihoodUnsupported(
                f"dupo.dual_mode=likelihood cannot score {where} of task {task.name!r}: {reason}"
            ) from None
        count += 1
    return count


def gold_label(reward_model: Any) -> str | None:
    """`reward_model.ground_truth` as one answer text, or None when the row has no usable gold label.

    The same reading as validation (`reward_fns.scoring.gold_answers`): a NaN, boolean, bytes or
    mapping is no label (`str(nan)` would pay an answer of "nan"). A list whose usable answers
    differ is no single label either: the gold metrics then skip the row (`dupo_has_gold` 0)
    rather than score a right answer against the wrong element.
    """
    answers = gold_answers(_plain(reward_model).get("ground_truth"))
    return answers[0] if answers and len(set(answers)) == 1 else None


async def score_row(
    task: DualTask,
    duals: Sequence[DualQuestion],
    response: str,
    generate: GenerateFn,
    options: DualOptions,
    session_id: str,
    ground_truth: str | None,
) -> DuPOReward:
    """`score_response`, but an unexpected failure costs one sample, not the training step.

    The failure is logged with its traceback and counted in `dupo_dual_errors`; the sample gets
    `no_answer_reward`.
    """
    try:
        return await score_response(task, duals, response, generate, options, session_id, ground_truth)
    except LikelihoodUnsupported:  # a setup error (task vs dual_mode), not one sample's failure
        raise
    except Exception:
        logger.exception("DuPO scoring failed for session %s; scored as a dual error", session_id)
        metrics = dict.fromkeys(METRIC_KEYS, 0.0)
        metrics["dupo_dual_errors"] = 1.0
        metrics["dupo_reward"] = options.no_answer_reward
        return DuPOReward(reward=options.no_answer_reward, metrics=metrics)


def _config_get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, DictConfig | Mapping):
        return config.get(key)
    return getattr(config, key, None)


def _plain(value: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig, a mapping, a 0-d numpy object array, or None."""
    plain = {} if value is None else to_plain(value)  # also a 0-d numpy object array
    if not isinstance(plain, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return plain
