"""V1 trainers that log DuPO's per-sample metrics at every training step.

verl 0.9.1's V1 trainer logs `reward_extra_info` keys only at validation. These subclasses of
verl's three V1 trainers (registered as `dupo_sync`, `dupo_colocate_async`, `dupo_separate_async`;
pick one with `trainer.v1.trainer_mode=dupo_sync`) behave exactly like their base and add
`dupo/<metric>/mean` to each step's metrics, read from the rollouts' `extra_fields` in the
TransferQueue before verl clears the batch.
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

logger = logging.getLogger(__name__)

# Averaged only over rows that have a gold label (meaningless elsewhere).
_GOLD_ONLY = ("dupo_gold_acc", "dupo_agrees_with_gold")


def summarize_reward_extra_info(infos: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """`dupo/<name>/mean` over samples for every DuPO metric key present in `reward_extra_info`.

    >>> summarize_reward_extra_info([{"dupo_dual_acc": 1.0}, {"dupo_dual_acc": 0.0}])
    {'dupo/dual_acc/mean': 0.5}
    """
    rows = [info for info in infos if isinstance(info, Mapping)]
    gold_rows = [info for info in rows if float(info.get("dupo_has_gold", 0.0)) > 0]
    out: dict[str, float] = {}
    for key in METRIC_KEYS:
        pool = gold_rows if key in _GOLD_ONLY else rows
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


class _DuPOMetricsMixin:
    """Runs as verl's `base_mode` trainer and adds the DuPO means to each step's metrics."""

    base_mode: str = ""

    def __init__(self, config: Any) -> None:
        # verl keys its behaviour (replay buffer, refill, checkpoints) off trainer_mode == "sync" etc.
        with open_dict(config):
            config.trainer.v1.trainer_mode = self.base_mode
        super().__init__(config)  # type: ignore[call-arg]

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
