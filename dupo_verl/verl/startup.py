"""Start-up checks of a job's settings and data, for every trainer, not only the `dupo_*` V1 ones.

verl's V0 trainer and its plain V1 trainers give a plugin no hook between building the datasets
and the first step. The agent loop and the `dupo` reward manager are built before the first row is
scored, so they run the check there, once per process, over the parquet files the job names
(`data.train_files`, `data.val_files`): an unsupported task fails at the first rollout (before any
training step), with the row named, not at the step that first samples it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dupo_verl.scoring import DualOptions
from dupo_verl.verl.rows import check_rows_dual_mode

logger = logging.getLogger(__name__)

# (files, agent filter) already checked in this process: each agent loop instance is built per row
_CHECKED: set[tuple[Any, ...]] = set()


def data_files(data_config: Any) -> list[tuple[str, str]]:
    """(split, path) of each local parquet file of `data.train_files` / `data.val_files`."""
    out = []
    for split in ("train", "val"):
        value = (data_config or {}).get(f"{split}_files")
        paths = [value] if isinstance(value, str) else list(value or [])
        out += [(split, str(p)) for p in paths if str(p).endswith(".parquet") and Path(str(p)).is_file()]
    return out


def dupo_rows(rows: Iterable[Mapping[str, Any]], default_agent: str | None, all_rows: bool):
    """The rows DuPO scores: those rolled out by `dupo_agent` (their `agent_name`, else the default
    agent loop), or every row when the `dupo` reward manager scores them all."""
    return (row for row in rows if all_rows or (row.get("agent_name") or default_agent) == "dupo_agent")


def check_files_once(data_config: Any, options: DualOptions, default_agent: str | None, all_rows: bool) -> int:
    """`check_rows_dual_mode` over the job's parquet files, once per process; rows checked (0 when
    already checked, when not in likelihood mode, or when the files are not local parquet)."""
    if options.dual_mode != "likelihood":
        return 0
    # keyed on the config's own values: `dupo_agent` is built once per rollout, so a repeat costs
    # one set lookup, no file-system call
    raw = tuple(str((data_config or {}).get(f"{split}_files")) for split in ("train", "val"))
    key = (raw, default_agent, all_rows)
    if key in _CHECKED:
        return 0
    files = data_files(data_config)
    import pyarrow.parquet as pq

    checked = 0
    for split, path in files:
        names = set(pq.read_schema(path).names)
        if "extra_info" not in names:
            continue
        columns = [c for c in ("extra_info", "data_source", "agent_name") if c in names]
        batches = pq.ParquetFile(path).iter_batches(batch_size=4096, columns=columns)  # bounded memory
        rows = (row for batch in batches for row in batch.to_pylist())
        checked += check_rows_dual_mode(dupo_rows(rows, default_agent, all_rows), options, f"the {split} file {path}")
    _CHECKED.add(key)
    logger.info("dupo.dual_mode=likelihood: %d rows of %d file(s) can be scored", checked, len(files))
    return checked


def require_room_for_duals(options: DualOptions, context_limit: int | None, where: str) -> None:
    """One line at start-up when `dual_max_tokens` leaves no room for a dual prompt in the dual model's
    context: otherwise every dual call fails as too long and every reward is a counted 0."""
    if options.dual_mode != "sample" or not context_limit:
        return
    if options.dual_max_tokens >= context_limit:
        raise ValueError(
            f"dupo.dual_max_tokens={options.dual_max_tokens} leaves no room for a dual prompt in the context of "
            f"{context_limit} tokens of {where}; lower dupo.dual_max_tokens (a dual prompt plus its answer "
            "must fit)"
        )


def first_row_not_rolled_out_by(agent: str, data_config: Any, default_agent: str | None) -> str | None:
    """Where the first row of the job's parquet files that `agent` does not roll out sits (its
    `agent_name`, else the default agent loop), or None when every row is (or the files are not local:
    their rows may name their agent)."""
    import pyarrow.parquet as pq

    for split, path in data_files(data_config):
        if "agent_name" not in pq.read_schema(path).names:
            if default_agent != agent:
                return f"the {split} file {path} (no agent_name column; default_agent_loop={default_agent!r})"
            continue
        index = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=["agent_name"]):
            for name in batch.column(0).to_pylist():
                if (name or default_agent) != agent:
                    return f"row {index} of the {split} file {path} (agent_name={name!r})"
                index += 1
    return None
