"""The account of one prepare run: every input row is either kept or skipped for a named reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ERROR_MESSAGES = 20


@dataclass
class PrepareSummary:
    """Counts of a prepare run; `to_dict()` is what `<out>.summary.json` holds."""

    task: str
    params: dict[str, Any] = field(default_factory=dict)
    rows_read: int = 0
    rows_kept: int = 0
    rows_train: int = 0
    rows_val: int = 0
    rows_with_duals: int = 0
    dual_questions: int = 0
    duals_per_row: Counter = field(default_factory=Counter)  # number of duals -> kept rows
    rows_skipped: Counter = field(default_factory=Counter)
    candidates_skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # about kept rows only, e.g. missing_answer
    errors: list[str] = field(default_factory=list)
    outputs: dict[str, str | None] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # stale outputs of an earlier run, deleted
    seconds: float = 0.0

    def add_error(self, message: str) -> None:
        if len(self.errors) < MAX_ERROR_MESSAGES:
            self.errors.append(message)

    @property
    def coverage(self) -> float:
        """Share of input rows with at least one dual question."""
        return self.rows_with_duals / self.rows_read if self.rows_read else 0.0

    @property
    def mean_duals(self) -> float:
        """Dual questions per row with at least one."""
        return self.dual_questions / self.rows_with_duals if self.rows_with_duals else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "params": self.params,
            "settings": self.settings,
            "outputs": self.outputs,
            "removed": self.removed,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_train": self.rows_train,
            "rows_val": self.rows_val,
            "rows_with_duals": self.rows_with_duals,
            "coverage": round(self.coverage, 4),
            "dual_questions": self.dual_questions,
            "duals_per_row_mean": round(self.mean_duals, 4),
            "duals_per_row_histogram": {str(k): v for k, v in sorted(self.duals_per_row.items())},
            "rows_skipped": dict(sorted(self.rows_skipped.items())),
            "candidates_skipped": dict(sorted(self.candidates_skipped.items())),
            "notes": dict(sorted(self.notes.items())),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_read / self.seconds, 1) if self.seconds > 0 else None,
        }

    def format(self) -> str:
        """A few human-readable lines for the terminal."""
        lines = [
            f"task {self.task}: read {self.rows_read} rows, kept {self.rows_kept} "
            f"(train {self.rows_train}, val {self.rows_val})",
            f"dual questions: {self.dual_questions} ({self.mean_duals:.2f} per row with any); "
            f"coverage {self.coverage:.1%} of rows",
        ]
        if self.rows_skipped:
            lines.append(
                "rows skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rows_skipped.items()))
            )
        if self.candidates_skipped:
            lines.append(
                "candidates not used: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.candidates_skipped.items()))
            )
        if self.notes:
            lines.append(
                "notes on kept rows: " + ", ".join(f"{k} {v}" for k, v in sorted(self.notes.items()))
            )
        for key, path in self.outputs.items():
            if path:
                lines.append(f"wrote {key}: {path}")
        for path in self.removed:
            lines.append(f"removed stale {path} (left by an earlier run; this run writes no such file)")
        if self.seconds > 0:
            lines.append(f"{self.rows_read / self.seconds:,.0f} rows/s ({self.seconds:.2f} s)")
        return "\n".join(lines)
