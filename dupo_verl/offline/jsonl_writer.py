"""Append-only jsonl output that survives being killed: the basis of `--resume`.

Every row is one line, written, flushed and fsynced before the next. A run killed mid-write leaves
at most one partial last line; resuming cuts it off and keeps every complete row, so the finished
file is byte-identical to an uninterrupted run's (given deterministic rows).

`overwrite` never destroys the old file up front: the new rows go to a hidden file beside it, which
replaces the old one when the first new row is written (or at `commit()`); a run that stops before
that (the model failed to load) leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def dumps_row(row: dict[str, Any]) -> str:
    """The one serialisation of a row (stable key order, UTF-8 kept readable)."""
    return json.dumps(row, ensure_ascii=False, allow_nan=False)


class ResumableJsonlWriter:
    """`open()` returns the rows already there (resume) and positions for appending."""

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.resume = resume
        self.overwrite = overwrite
        self._fh: IO[str] | None = None
        self._pending: Path | None = None  # the new file that will replace `path` (overwrite)
        self._on_commit: list[Callable[[], None]] = []
        self.dropped_partial_line = False

    def open(self) -> list[dict[str, Any]]:
        """Rows already written (empty unless resuming); raises if output exists and may not be touched."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing: list[dict[str, Any]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            if self.resume:
                existing = self._recover()
            elif not self.overwrite:
                raise FileExistsError(
                    f"{self.path} exists; pass --resume to continue it or --overwrite to replace it"
                )
            else:
                self._fh = self._open_replacement()
                return existing
        self._fh = self.path.open("a", encoding="utf-8")
        return existing

    def _open_replacement(self) -> IO[str]:
        """A fresh hidden file beside `path` (O_EXCL: never someone else's; umask permissions)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._pending = tmp
        return os.fdopen(fd, "a", encoding="utf-8")

    def when_committed(self, action: Callable[[], None]) -> None:
        """Run `action` once the output is this run's: now, or (overwrite) when the old file is replaced."""
        if self._pending is None:
            action()
        else:
            self._on_commit.append(action)

    def commit(self) -> None:
        """Replace the old output by this run's file (overwrite; nothing to do otherwise)."""
        if self._pending is None:
            return
        os.replace(self._pending, self.path)  # the open handle follows the file to its new name
        self._pending = None
        actions, self._on_commit = self._on_commit, []
        for action in actions:
            action()

    def _recover(self) -> list[dict[str, Any]]:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # everything after the last newline is a partial row
        if end < len(data):
            self.dropped_partial_line = True
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        rows = []
        for lineno, raw in enumerate(data[:end].split(b"\n"), 1):  # "\n" alone ends a row
            if not raw.strip():
                continue
            try:
                rows.append(json.loads(raw.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{self.path}:{lineno}: not UTF-8 (byte at column {exc.start + 1}); fix or delete that line"
                ) from None
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to be a row
                raise ValueError(
                    f"{self.path}:{lineno}: corrupt row ({exc}); fix or delete that line"
                ) from None
        return rows

    def keep_first(self, count: int) -> None:
        """Cut the file after its first `count` rows (the rest is redone: see `pipeline.run_rows`)."""
        data = self.path.read_bytes()
        offset = seen = 0
        while seen < count:
            end = data.index(b"\n", offset) + 1
            if data[offset:end].strip():
                seen += 1
            offset = end
        with self.path.open("r+b") as fh:
            fh.truncate(offset)

    def write(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("writer is not open")
        self._fh.write(dumps_row(row) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.commit()  # the first new row replaces an overwritten output

    def close(self) -> None:
        """Close the file; an overwrite that wrote nothing is dropped and the old output kept."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._pending is not None:
            self._pending.unlink(missing_ok=True)
            self._pending = None
            self._on_commit = []

    def __enter__(self) -> ResumableJsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
