"""Every relative link and image in the repository's Markdown resolves to a file (and heading) in it.

README.md moves things into docs/; a renamed folder or heading must fail here, not on a user's screen.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"build", "dist", "runs", "node_modules"}

_FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", flags=re.M)


def markdown_files(root: Path = REPO) -> list[Path]:
    """The repository's own Markdown files (no virtual environments, caches or build output)."""
    found = []
    for path in sorted(root.rglob("*.md")):
        parts = path.relative_to(root).parts[:-1]
        if any(p.startswith(".") or p in SKIP_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        found.append(path)
    return found


def _prose(text: str) -> str:
    """Markdown without fenced blocks and code spans (links there are examples, not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def heading_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {heading_slug(h) for h in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8")))}


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """Relative links of one Markdown file whose target file or heading does not exist."""
    problems = []
    for target in _LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}: ({target})"
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where} -> {file_part} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} -> no heading #{anchor} in {resolved.relative_to(root.resolve())}")
    return problems


def test_readme_and_docs_are_checked():
    checked = {p.relative_to(REPO).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/results/README.md", "docs/architecture.md", "docs/testing.md"} <= checked


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(path: Path):
    assert broken_links(path) == []


def test_readme_links_its_results_and_the_results_link_every_folder():
    readme_targets = _LINK.findall(_prose((REPO / "README.md").read_text()))
    assert "docs/results/README.md" in readme_targets
    results = REPO / "docs" / "results"
    linked = {
        (results / t.partition("#")[0]).resolve()
        for t in _LINK.findall(_prose((results / "README.md").read_text()))
    }
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        assert any(t.is_relative_to(folder.resolve()) for t in linked), (
            f"docs/results/README.md never links {folder.name}/"
        )


def test_checker_reports_missing_files_headings_and_escapes(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## Some `code` heading\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok anchor](docs/a.md#some-code-heading) [self](#top) ![img](docs/missing.png)\n"
        "[bad anchor](docs/a.md#nope) [out](../elsewhere.md) [web](https://example.com/x)\n"
        "# Top\n\n```bash\n[not a link](nowhere.md)\n```\nand `[code](nowhere.md)`\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 3, problems
    assert "docs/missing.png does not exist" in problems[0]
    assert "no heading #nope" in problems[1]
    assert "outside the repository" in problems[2]
