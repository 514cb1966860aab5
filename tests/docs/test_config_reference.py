"""The README's `+dupo.*` and metrics tables are what the code gives, and the generator is strict.

When this fails after a change to `DualOptions` or `METRIC_KEYS`, regenerate the tables:
    python -m dupo_verl.config_reference --write README.md
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dupo_verl import config_reference as ref
from dupo_verl.scoring import METRIC_KEYS, DualOptions

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_rows(markdown: str, block: str) -> list[list[str]]:
    """Cells of the body rows of one generated block of the README."""
    body = re.search(
        rf"<!-- BEGIN generated: {block} -->\n(.*?)<!-- END generated: {block} -->", markdown, re.S
    )
    assert body, f"README has no generated {block} block"
    lines = [ln for ln in body.group(1).splitlines() if ln.startswith("|")][2:]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]


def test_readme_tables_match_the_code():
    text = README.read_text(encoding="utf-8")
    assert ref.render(text) == text, (
        "README tables are stale: python -m dupo_verl.config_reference --write README.md"
    )


def test_readme_option_rows_are_every_dualoptions_field_with_its_default_and_help():
    rows = _table_rows(README.read_text(encoding="utf-8"), "dupo-options")
    defaults = DualOptions()
    fields = dataclasses.fields(DualOptions)
    assert [r[0] for r in rows] == [f"`+dupo.{f.name}`" for f in fields]
    for row, f in zip(rows, fields, strict=True):
        value = getattr(defaults, f.name)
        expected = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        assert row[2] == f"`{expected}`", f.name
        assert row[3] and row[3].replace("\\|", "|") == " ".join(f.metadata["help"].split()), f.name


def test_readme_metric_rows_are_every_metric_key():
    rows = _table_rows(README.read_text(encoding="utf-8"), "dupo-metrics")
    assert [r[0] for r in rows] == [f"`{k}`" for k in METRIC_KEYS]
    assert all(r[2] and r[3] for r in rows)


def test_options_table_fails_loudly_on_a_field_without_help():
    @dataclasses.dataclass(frozen=True)
    class Options:
        documented: int = dataclasses.field(default=1, metadata={"help": "one | two"})
        bare: float = 0.5
        blank: str = dataclasses.field(default="x", metadata={"help": "  "})

    with pytest.raises(ValueError, match="bare, blank"):
        ref.options_table(Options)


def test_options_table_renders_types_defaults_and_escapes_cells():
    @dataclasses.dataclass(frozen=True)
    class Options:
        a: int | None = dataclasses.field(default=None, metadata={"help": "a or b | c\nd"})
        flag: bool = dataclasses.field(default=True, metadata={"help": "on"})
        mode: str = dataclasses.field(default="mean", metadata={"help": "m"})

    lines = ref.options_table(Options).splitlines()
    assert lines[2] == r"| `+dupo.a` | `int \| None` | `null` | a or b \| c d |"
    assert lines[3] == "| `+dupo.flag` | `bool` | `true` | on |"
    assert lines[4] == "| `+dupo.mode` | `str` | `mean` | m |"


def test_every_metric_key_is_documented_and_an_undocumented_one_fails():
    table = ref.metrics_table()
    for key in METRIC_KEYS:
        assert f"| `{key}` | `{ref.step_metric_name(key)}` |" in table
    with pytest.raises(ValueError, match="undocumented \\['dupo_brand_new'\\]"):
        ref.metrics_table(keys=(*METRIC_KEYS, "dupo_brand_new"))
    with pytest.raises(ValueError, match="stale \\['dupo_reward'\\]"):
        ref.metrics_table(keys=tuple(k for k in METRIC_KEYS if k != "dupo_reward"))


def test_logged_names_are_what_the_dupo_trainers_log():
    from dupo_verl.verl.trainer import summarize_reward_extra_info

    sample = {key: 1.0 for key in METRIC_KEYS}
    logged = summarize_reward_extra_info([sample])
    assert set(logged) == {ref.step_metric_name(key) for key in METRIC_KEYS}


_NO_MARKER = st.text(alphabet=st.characters(exclude_characters="<"), max_size=200)


@given(before=_NO_MARKER, middle=_NO_MARKER, after=_NO_MARKER)
def test_render_replaces_only_the_text_between_markers(before: str, middle: str, after: str):
    text = (
        f"{before}<!-- BEGIN generated: one -->\nstale {before}\n<!-- END generated: one -->{middle}"
        f"<!-- BEGIN generated: two -->\n<!-- END generated: two -->{after}"
    )
    out = ref.render(text, {"one": lambda: "ONE\\1 $x", "two": lambda: "TWO"})
    assert out == (
        f"{before}<!-- BEGIN generated: one -->\nONE\\1 $x\n<!-- END generated: one -->{middle}"
        f"<!-- BEGIN generated: two -->\nTWO\n<!-- END generated: two -->{after}"
    )
    assert ref.render(out, {"one": lambda: "ONE\\1 $x", "two": lambda: "TWO"}) == out


@pytest.mark.parametrize("copies", [0, 2])
def test_render_refuses_missing_or_repeated_markers(copies: int):
    block = "<!-- BEGIN generated: one -->\nx\n<!-- END generated: one -->\n"
    with pytest.raises(ValueError, match=f"found {copies}"):
        ref.render("intro\n" + block * copies, {"one": lambda: "y"})


def test_cli_check_then_write_updates_only_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    current = README.read_text(encoding="utf-8")
    stale = re.sub(
        r"(<!-- BEGIN generated: dupo-options -->\n).*?(<!-- END generated: dupo-options -->)",
        r"\1| old table |\n\2",
        current,
        flags=re.S,
    )
    page = tmp_path / "README.md"
    page.write_text(stale, encoding="utf-8")
    assert ref.main(["--check", str(page)]) == 1
    assert page.read_text(encoding="utf-8") == stale
    assert ref.main(["--write", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == ref.render(current)
    assert ref.main(["--check", str(page)]) == 0
    assert ref.main(["--check", str(tmp_path / "missing.md")]) == 2
    assert "error:" in capsys.readouterr().err
