"""The prepare pipeline: records -> rows (with dual questions) -> train/val split -> parquet.

Shared by `dupo-verl prepare` and `DuPODataset`. Output is a pure function of the input, the task
and the seed: the validation rows are drawn with the seed, rows keep input order, and parquet
bytes are deterministic, so a rerun gives byte-identical files.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dupo_verl.data.readers import RawRecord
from dupo_verl.data.rows import BadRow, RowOptions, build_row, check_keys
from dupo_verl.data.summary import PrepareSummary
from dupo_verl.data.writer import write_json, write_rows
from dupo_verl.tasks.base import DualTask

PROGRESS_MIN_ROWS = 1000
# Skips that are not errors: `--strict` stops on every other reason.
BENIGN_SKIPS = frozenset({"no_dual_question", "duplicate"})


class StrictError(BadRow):
    """Raised under `strict=True` for the first record that cannot become a row."""


@dataclass
class PrepareConfig:
    """Everything that decides the rows besides the input."""

    task: DualTask
    rows: RowOptions
    val_fraction: float = 0.0
    strict: bool = False
    dedup: bool = False
    progress: bool = True
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.rows.max_duals is not None and self.rows.max_duals < 1:
            raise ValueError(f"max_duals_per_problem must be >= 1, got {self.rows.max_duals}")
        check_keys(self.task, self.rows.keys)


def build_rows(
    records: Iterable[RawRecord], config: PrepareConfig, total: int | None = None
) -> tuple[list[dict[str, Any]], PrepareSummary]:
    """Rows for every usable record, and the summary accounting for every record."""
    summary = PrepareSummary(
        task=config.task.name, params=dict(config.task.params), settings=dict(config.settings)
    )
    started = time.perf_counter()
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    quiet = not config.progress or (total is not None and total < PROGRESS_MIN_ROWS)
    bar = tqdm(
        records,
        total=total,
        desc=f"prepare {config.task.name}",
        unit=" rows",
        disable=True if quiet else None,
        file=sys.stderr,
        mininterval=0.5,
    )
    first_fields: list[str] | None = None
    for raw in bar:
        summary.rows_read += 1
        if first_fields is None and raw.data is not None:
            first_fields = sorted(map(str, raw.data))
        outcome = build_row(config.task, raw, config.rows)
        if outcome.candidates_skipped:
            summary.candidates_skipped.update(outcome.candidates_skipped)
        reason, message = outcome.skip_reason, outcome.message
        if reason is None and config.dedup:
            key = json.dumps(outcome.example, sort_keys=True, ensure_ascii=False, default=str)
            if key in seen:
                reason, message = "duplicate", f"row {raw.index}: duplicate of an earlier row"
            seen.add(key)
        if reason is not None:
            if config.strict and reason not in BENIGN_SKIPS:
                raise StrictError(reason, f"{message} (--strict: stopping; nothing written)")
            summary.rows_skipped[reason] += 1
            summary.add_error(message)
            continue
        if config.strict and outcome.notes:
            raise StrictError(next(iter(outcome.notes)), f"row {raw.index}: {dict(outcome.notes)} (--strict)")
        summary.notes.update(outcome.notes)  # notes describe kept rows only (a skip has its reason)
        rows.append(outcome.row)
        summary.rows_kept += 1
        summary.duals_per_row[outcome.duals] += 1
        summary.dual_questions += outcome.duals
        summary.rows_with_duals += outcome.duals > 0
    summary.seconds = time.perf_counter() - started
    _check_named_columns(config.rows.keys, summary, first_fields)
    return rows, summary


def _check_named_columns(keys: Mapping[str, str], summary: PrepareSummary, first_fields: list[str] | None) -> None:
    """A column named for an optional field (`--answer-key answr`) that no kept row has is a typo far
    more often than data without a single answer: stop before writing unlabelled rows."""
    for name, column in keys.items():
        if summary.rows_kept and summary.notes[f"missing_{name}"] == summary.rows_kept:
            raise ValueError(
                f"the column {column!r} named for the {name} field is missing or null in every kept row "
                f"({summary.rows_kept}); misspelt? fields of the first row: {first_fields}"
            )


def split_rows(rows: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Draw round(val_fraction * n) validation rows with the seed (at least one, never all, when
    val_fraction > 0 and n >= 2); both parts keep input order and get `extra_info.split` set."""
    n = len(rows)
    n_val = 0
    if val_fraction > 0 and n >= 2:
        n_val = min(n - 1, max(1, round(val_fraction * n)))
    chosen = set(random.Random(f"dupo-split:{seed}").sample(range(n), n_val))
    train, val = [], []
    for i, row in enumerate(rows):
        is_val = i in chosen
        row["extra_info"]["split"] = "val" if is_val else "train"
        (val if is_val else train).append(row)
    return train, val


def val_path(output: str | Path) -> Path:
    """`<stem>_val.parquet` beside the train file."""
    out = Path(output)
    return out.with_name(f"{out.stem}_val{out.suffix or '.parquet'}")


def summary_path(output: str | Path) -> Path:
    return Path(f"{output}.summary.json")


def prepare(
    records: Iterable[RawRecord], output: str | Path, config: PrepareConfig, total: int | None = None
) -> PrepareSummary:
    """Build, split and write `output` (and `<stem>_val.parquet`, `<output>.summary.json`).

    The files at these paths always describe this run: a train or val file this run does not
    write (no rows kept, or `val_fraction=0` after a run with a val split) is removed rather than
    left behind with an earlier run's rows, and the summary lists it under `removed`. This function
    replaces existing files (a Python caller decides); `dupo-verl prepare` refuses
    them unless given `--overwrite`.
    """
    started = time.perf_counter()
    rows, summary = build_rows(records, config, total)
    train, val = split_rows(rows, config.val_fraction, config.rows.seed)
    summary.rows_train, summary.rows_val = len(train), len(val)
    out = Path(output)
    summary.outputs = {"train": str(out) if train else None, "val": str(val_path(out)) if val else None}
    if summary_path(val_path(out)).is_file():  # before anything is written or removed
        raise ValueError(
            f"{val_path(out)} has a summary of its own, so it is another prepare run's output, not this run's "
            "validation file; it is neither replaced nor removed: choose another --output"
        )
    for rows_of_part, path in ((train, out), (val, val_path(out))):
        if rows_of_part:
            write_rows(rows_of_part, path)
        elif path.is_file():
            path.unlink()  # a stale file from an earlier run must not pass for this run's output
            summary.removed.append(str(path))
    summary.seconds = time.perf_counter() - started
    write_json(summary.to_dict(), summary_path(out))
    return summary
