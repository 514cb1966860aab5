"""The commands README.md and docs/ tell users to type exist: `make` targets and `dupo-verl` flags.

`main_ppo` command lines are checked against verl's config by tests/verl/test_readme_overrides.py.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from dupo_verl.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def shell_commands(markdown: str) -> list[list[str]]:
    """Each command of the ```bash blocks, continuation lines joined, comments and env prefixes dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):  # MODEL=... bash script.sh
                argv = argv[1:]
            if argv:
                commands.append(argv)
    return commands


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*):", (REPO / "Makefile").read_text(), flags=re.M))


def _page_id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_readme_starts_with_make_demo_and_make_test():
    commands = shell_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert commands[:2] == [["make", "demo"], ["make", "test"]]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_make_targets_exist(page: Path):
    targets = _makefile_targets()
    used = {argv[1] for argv in shell_commands(page.read_text(encoding="utf-8")) if argv[0] == "make"}
    used |= set(re.findall(r"`make ([\w.-]+)`", page.read_text(encoding="utf-8")))
    assert used <= targets, (
        f"{_page_id(page)} names make targets the Makefile lacks: {sorted(used - targets)}"
    )


def unparsable_commands(markdown: str) -> list[str]:
    """The `dupo-verl ...` commands of a page that the real argument parser rejects, with its message."""
    parser = build_parser()
    parser.exit_on_error = False  # subparsers still exit on errors; catch both
    bad = []
    for argv in shell_commands(markdown):
        if argv[0] != "dupo-verl":
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parser.parse_args(argv[1:])
        except (SystemExit, argparse.ArgumentError) as exc:
            bad.append(f"`{shlex.join(argv)}`: {err.getvalue().strip() or exc}")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_dupo_verl_commands_parse(page: Path):
    assert unparsable_commands(page.read_text(encoding="utf-8")) == []


def test_a_wrong_flag_or_subcommand_is_caught():
    page = (
        "```bash\ndupo-verl prepare math --input a.jsonl --output b.parquet --no-such-flag\n"
        "dupo-verl frobnicate\nMODEL=x dupo-verl prepare two-sum --output c.parquet --num-problems 9\n```\n"
    )
    bad = unparsable_commands(page)
    assert len(bad) == 2, bad
    assert "--no-such-flag" in bad[0] and "frobnicate" in bad[1]


def test_example_scripts_named_in_readme_exist():
    scripts = {
        a for argv in shell_commands((REPO / "README.md").read_text()) for a in argv if a.endswith(".sh")
    }
    assert scripts, "README runs no example script"
    for script in scripts:
        assert (REPO / script).is_file(), script
