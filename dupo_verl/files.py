"""Writing output files safely: atomically, and never over an input.

One implementation for every command: a reader never sees half a file (we write a temporary file
in the target folder and rename it over the target), and an output path that resolves to one of
the job's inputs (same path, a symlink, a relative spelling, a hard link) is refused before any
work starts, because overwriting the data being read is a silent loss.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path


class OutputError(ValueError):
    """An output path that may not be written (it is an input, or cannot be created)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` on a fresh temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    _check_replaceable("output", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (after symlinks, `..` and hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None]) -> None:
    """Refuse (one clear `OutputError`) an output that is an input, or two outputs on one path.

    `outputs` maps a name for the user (e.g. "--output") to a path; None entries are ignored.
    """
    named_inputs = [Path(p) for p in inputs if p is not None]
    named_outputs = [(name, Path(p)) for name, p in outputs.items() if p is not None]
    for name, out in named_outputs:
        for source in named_inputs:
            if same_file(out, source):
                raise OutputError(
                    f"{name} {out} is the input {source}: refusing to write over an input; choose another path"
                )
    for i, (name, out) in enumerate(named_outputs):
        for other, path in named_outputs[i + 1 :]:
            if same_file(out, path):
                raise OutputError(f"{name} and {other} are the same file ({out}); choose different paths")
        _check_replaceable(name, out)
        _check_writable(name, out)


def present(path: str | Path) -> bool:
    """Anything at `path`, a dangling symlink included (replacing it would lose the link)."""
    return Path(path).exists() or Path(path).is_symlink()


def refuse_existing(outputs: Mapping[str, str | Path], hint: str) -> None:
    """One `OutputError` naming the first of `outputs` (name for the user -> path) that exists: an
    earlier run's file is replaced only when the user says so (`hint`: how, e.g. "pass --overwrite")."""
    for name, path in outputs.items():
        if present(path):
            raise OutputError(f"{name} {path} exists; {hint}")


def _check_replaceable(name: str, path: Path) -> None:
    """Only a regular file (or nothing) may be replaced: renaming over `/dev/null`, a fifo or a
    folder would destroy it rather than write to it."""
    if path.is_dir():
        raise OutputError(f"{name} {path} is a folder; give a file path")
    if path.exists() and not path.is_file():
        raise OutputError(f"{name} {path} is not a regular file (a device or pipe); give a file path")


def _check_writable(name: str, path: Path) -> None:
    """Fail before the work, not after it, when the output's folder cannot be written."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{name} {path}: cannot create its folder ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{name} {path}: folder {folder} is not writable")
