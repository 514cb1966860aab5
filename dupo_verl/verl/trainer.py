"""V1 trainers that log DuPO's per-sample metrics at every training step.

verl 0.9.1's V1 trainer logs `reward_extra_info` keys only at validation. These subclasses of
verl's three V1 trainers (registered as `dupo_sync`, `dupo_colocate_async`, `dupo_separate_async`;
pick one with `trainer.v1.trainer_mode=dupo_sync`) behave exactly like their base and add
`dupo/<metric>/mean` to each step's metrics, read from the rollouts' `extra_fields` in the
TransferQueue before verl clears the batch. With `dupo.dual_mode=likelihood` they also check, as
soon as verl has built the datasets (before any worker starts), that every DuPO-scored row can be
scored that way (`check_datasets_dual_mode`); under other trainers the agent loop and the `dupo`
reward manager run it over the data files when they are built (`startup.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import transfer_queue as tq
from omegaconf import open_dict
from verl.trainer.ppo.v1 import (
    PPOTrainerColocateAsync,
    PPOTrainerSeparateAsync,
    PPOTrainerSync,
    register_trainer,
)

from dupo_verl.scoring import METRIC_KEYS
from dupo_verl.verl.rows import agent_yaml_dupo, check_rows_dual_mode, resolve_options, rollout_agent
from dupo_verl.verl.startup import dupo_rows

logger = logging.getLogger(__name__)

# Averaged only over rows that have a gold label (meaningless elsewhere).
_GOLD_ONLY = ("dupo_gold_acc", "dupo_agrees_with_gold")
# Averaged only over rows whose judge scored a dual answer: a rollout with no answer, or whose dual
# calls all failed, has no log-prob (its 0.0 would pull the mean towards "healthy").
_SCORED_ONLY = ("dupo_dual_logprob", "dupo_dual_logprob_sum")


def summarize_reward_extra_info(infos: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """`dupo/<name>/mean` over samples for every DuPO metric key present in `reward_extra_info`.

    >>> summarize_reward_extra_info([{"dupo_dual_acc": 1.0}, {"dupo_dual_acc": 0.0}])
    {'dupo/dual_acc/mean': 0.5}
    """
    rows = [info for info in infos if isinstance(info, Mapping)]
    gold_rows = [info for info in rows if float(info.get("dupo_has_gold", 0.0)) > 0]
    scored_rows = [info for info in rows if float(info.get("dupo_dual_samples", 0.0)) > 0]
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        pool = gold_rows if key in _GOLD_ONLY else scored_rows if key in _SCORED_ONLY else rows
        values = [float(info[key]) for info in pool if key in info and info[key] is not None]
        if values:
            out[f"dupo/{key.removeprefix('dupo_')}/mean"] = sum(values) / len(values)
    return out


def reward_extra_infos(extra_fields: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The `reward_extra_info` dicts of TransferQueue `extra_fields` entries (NonTensorData or dict)."""
    infos = []
    for value in extra_fields:
        fields = getattr(value, "data", value)
        info = fields.get("reward_extra_info") if isinstance(fields, Mapping) else None
        infos.append(info if isinstance(info, Mapping) else {})
    return infos


def check_datasets_dual_mode(config: Any, datasets: Mapping[str, Any]) -> int:
    """The start-up check (`check_rows_dual_mode`) over every DuPO-scored row of verl's datasets.

    A row is DuPO-scored when its agent is `dupo_agent` (the `agent_name` column, else the default
    agent loop) or when the `dupo` reward manager scores every row. Options as `dupo_agent` resolves
    them: the agent-loop YAML's `dupo:` mapping, then `+dupo.<key>`.
    """
    options = resolve_options(agent_yaml_dupo(config), config)
    if options.dual_mode != "likelihood":
        return 0
    default_agent = rollout_agent(config).get("default_agent_loop")
    all_rows = (((config.get("reward") or {}).get("reward_manager")) or {}).get("name") == "dupo"
    checked = 0
    for split, dataset in datasets.items():
        frame = getattr(dataset, "dataframe", None)
        if frame is None or "extra_info" not in frame.column_names:
            continue
        columns = [c for c in ("extra_info", "data_source", "agent_name") if c in frame.column_names]
        rows = dupo_rows(frame.select_columns(columns), default_agent, all_rows)
        checked += check_rows_dual_mode(rows, options, f"the {split} dataset")
    logger.info("dupo.dual_mode=likelihood: %d rows can be scored", checked)
    return checked


class _DuPOMetricsMixin:
    """Runs as verl's `base_mode` trainer and adds the DuPO means to each step's metrics."""

    base_mode: str = ""

    def __init__(self, config: Any) -> None:
        # verl keys its behaviour (replay buffer, refill, checkpoints) off trainer_mode == "sync" etc.
        with open_dict(config):
            config.trainer.v1.trainer_mode = self.base_mode
        super().__init__(config)  # type: ignore[call-arg]

    def _init_dataloader(self) -> None:
        # verl builds both datasets in __init__, before any worker starts: the start-up check of
        # the dual mode against every row runs here, not at the first step that samples a row
        super()._init_dataloader()  # type: ignore[misc]
        check_datasets_dual_mode(
            self.config,  # type: ignore[attr-defined]
            {"train": self.train_dataset, "val": self.val_dataset},  # type: ignore[attr-defined]
        )

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        batch = super().step(metrics, timing_raw)  # type: ignore[misc]
        try:
            metrics.update(self._dupo_step_metrics(batch))
        except Exception:  # a metrics problem must never stop training
            logger.exception("could not collect DuPO training metrics for this step")
        return batch

    @staticmethod
    def _dupo_step_metrics(batch: Any) -> dict[str, float]:
        keep = [not tag.get("is_padding", False) for tag in batch.tags]
        keys = [key for key, k in zip(batch.keys, keep, strict=True) if k]
        if not keys:
            return {}
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        return summarize_reward_extra_info(reward_extra_infos(data["extra_fields"]))


@register_trainer("dupo_sync")
class DuPOTrainerSync(_DuPOMetricsMixin, PPOTrainerSync):
    base_mode = "sync"


@register_trainer("dupo_colocate_async")
class DuPOTrainerColocateAsync(_DuPOMetricsMixin, PPOTrainerColocateAsync):
    base_mode = "colocate_async"


@register_trainer("dupo_separate_async")
class DuPOTrainerSeparateAsync(_DuPOMetricsMixin, PPOTrainerSeparateAsync):
    base_mode = "separate_async"
