"""Issue 16, classes 3, 4, 8 and 9 for `dupo-verl prepare` and the readers: no input overwritten, no
stale file passing for this run's output, no misread record, no traceback for a user error, memory
linear in a problem's size, and no module imported because data named it."""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dupo_verl.cli import main
from dupo_verl.data import PrepareConfig, RawRecord, RowOptions, build_rows, open_source
from dupo_verl.data.prepare import summary_path, val_path
from dupo_verl.scoring import task_from_info
from dupo_verl.tasks import get_task
from dupo_verl.tasks.registry import TASK_MODULES_ENV

PROBLEMS = [
    {
        "id": f"p{i}",
        "problem": f"Tom has {i + 3} apples and buys {2 * i + 5} more. How many now?",
        "answer": "x",
    }
    for i in range(7)
]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def prepare_math(src: Path, out: Path, *extra: str) -> int:
    return main(["prepare", "math", "--input", str(src), "--output", str(out), "--no-progress", *extra])


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- class 3: never write over an input; no stale companions ------------------------------------------


@pytest.mark.parametrize("spelling", ["same", "symlink", "relative", "hardlink", "val_file", "summary"])
def test_prepare_never_writes_over_its_input(spelling: str, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "d").mkdir()
    src = tmp_path / "d" / "in.parquet"
    assert prepare_math(write_jsonl(tmp_path / "raw.jsonl", PROBLEMS), src) == 0  # a parquet input
    before = src.read_bytes()
    capsys.readouterr()
    out = {
        "same": src,
        "relative": Path("..") / "d" / "in.parquet",
        "val_file": tmp_path / "d" / "in_val.parquet",  # writes `in_val_val.parquet`: not the input...
        "summary": tmp_path / "d" / "x.parquet",
    }.get(spelling)
    if spelling == "symlink":
        out = tmp_path / "link.parquet"
        out.symlink_to(src)
    elif spelling == "hardlink":
        out = tmp_path / "hard.parquet"
        os.link(src, out)
    elif spelling == "relative":
        monkeypatch.chdir(tmp_path / "d")
    elif spelling == "val_file":  # ...so make the input the val file of the output instead
        src = tmp_path / "d" / "x_val.parquet"
        src.write_bytes(before)
        out = tmp_path / "d" / "x.parquet"
    elif spelling == "summary":
        src = write_jsonl(tmp_path / "d" / "x.parquet.summary.json", PROBLEMS)  # the summary's path
        before = src.read_bytes()
    fmt = ["--format", "jsonl"] if spelling == "summary" else []
    assert prepare_math(src, out, *fmt) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "refusing to write over an input" in line
    assert src.read_bytes() == before


def test_filter_and_rerank_never_write_over_their_input(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.parquet"
    assert prepare_math(write_jsonl(tmp_path / "raw.jsonl", PROBLEMS), src) == 0
    before = src.read_bytes()
    capsys.readouterr()
    common = ["--backend", "hf", "--model", "unused", "--no-progress"]
    assert main(["filter", "--input", str(src), "--output", str(src), *common]) == 2
    assert "refusing to write over an input" in one_error_line(capsys.readouterr().err)
    assert (
        main(
            [
                "filter",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "f.parquet"),
                "--report",
                str(src),
                *common,
            ]
        )
        == 2
    )
    assert "refusing to write over an input" in one_error_line(capsys.readouterr().err)
    assert main(["rerank", "--input", str(src), "--output", str(src), *common]) == 2
    assert "refusing to write over an input" in one_error_line(capsys.readouterr().err)
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    assert main(["rerank", "--input", str(src), "--output", str(link), *common]) == 2
    assert "refusing to write over an input" in one_error_line(capsys.readouterr().err)
    assert src.read_bytes() == before


def test_rerun_without_val_split_removes_the_old_val_file(tmp_path: Path, capsys) -> None:
    src, out = write_jsonl(tmp_path / "raw.jsonl", PROBLEMS), tmp_path / "train.parquet"
    assert prepare_math(src, out, "--val-fraction", "0.3") == 0
    assert val_path(out).is_file()
    assert prepare_math(src, out, "--val-fraction", "0", "--overwrite") == 0
    assert not val_path(out).exists()  # its rows are all in the new train file now
    assert pq.read_table(out).num_rows == len(PROBLEMS)
    summary = json.loads(summary_path(out).read_text())
    assert summary["removed"] == [str(val_path(out))] and summary["outputs"]["val"] is None
    assert "removed stale" in capsys.readouterr().out


def test_run_keeping_no_rows_removes_the_old_outputs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "train.parquet"
    assert prepare_math(write_jsonl(tmp_path / "good.jsonl", PROBLEMS), out, "--val-fraction", "0.3") == 0
    nothing = write_jsonl(tmp_path / "bad.jsonl", [{"problem": "no numbers here"}])
    assert prepare_math(nothing, out, "--overwrite") == 1
    assert not out.exists() and not val_path(out).exists()
    summary = json.loads(summary_path(out).read_text())
    assert summary["rows_kept"] == 0 and sorted(summary["removed"]) == sorted([str(out), str(val_path(out))])


@FUZZ
@given(runs=st.lists(st.tuples(st.sampled_from([0.0, 0.3, 0.6]), st.booleans()), min_size=1, max_size=4))
def test_files_on_disk_always_match_the_last_summary(runs, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("runs")
    good = write_jsonl(folder / "good.jsonl", PROBLEMS)
    bad = write_jsonl(folder / "bad.jsonl", [{"problem": "none"}, {"problem": "x^2 only"}])
    out = folder / "t.parquet"
    for fraction, keep in runs:
        prepare_math(good if keep else bad, out, "--val-fraction", str(fraction), "--overwrite")
        summary = json.loads(summary_path(out).read_text())
        for part, path in (("train", out), ("val", val_path(out))):
            assert path.exists() == (summary["outputs"][part] is not None)
            if path.exists():
                assert pq.read_table(path).num_rows == summary[f"rows_{part}"]


# -- class 4: records, encodings, one-line errors ------------------------------------------------------


def test_text_lines_are_newline_delimited_only(tmp_path: Path) -> None:
    lines = ["a\u2028b 1", "c\x0cd 2", "e\x85f\u2029 3"]
    refs = ["R1\u2028x", "R2", "R3\x0b"]
    src, ref = tmp_path / "s.txt", tmp_path / "r.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ref.write_text("\r\n".join(refs) + "\r\n", encoding="utf-8")
    records = list(open_source(src, reference=ref).records)
    assert [r.data["text"] for r in records] == [line.strip() for line in lines]
    assert [r.data["reference"] for r in records] == [r.strip() for r in refs]


def test_jsonl_rows_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    rows = [{"problem": "x\u2028 is 3"}, {"problem": "y\x85 is 4"}]
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [r.data for r in open_source(src).records] == rows


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "txt", "json"])
def test_a_utf8_bom_is_accepted(suffix: str, tmp_path: Path) -> None:
    body = {
        "jsonl": '{"text": "one 1"}\n{"text": "two 2"}\n',
        "csv": "text\none 1\ntwo 2\n",
        "txt": "one 1\ntwo 2\n",
        "json": '[{"text": "one 1"}, {"text": "two 2"}]',
    }[suffix]
    src = tmp_path / f"s.{suffix}"
    src.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    records = list(open_source(src).records)
    assert [r.error for r in records] == [None, None]
    assert [r.data["text"] for r in records] == ["one 1", "two 2"]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "txt", "reference"])
def test_a_non_utf8_byte_is_a_counted_skip(suffix: str, tmp_path: Path, capsys) -> None:
    good = [f"Sam has {i} pens and {i + 4} cups." for i in range(1, 5)]
    lines = [line.encode() for line in good]
    bad = b"Sam has 9 pens \xff\xfe and 7 cups."
    src, argv = tmp_path / f"in.{'txt' if suffix == 'reference' else suffix}", []
    if suffix == "jsonl":
        src.write_bytes(
            b"\n".join([b'{"text": "' + line + b'"}' for line in [*lines[:2], bad, *lines[2:]]]) + b"\n"
        )
    elif suffix == "csv":
        src.write_bytes(b"text\n" + b"\n".join([*lines[:2], bad, *lines[2:]]) + b"\n")
    elif suffix == "txt":
        src.write_bytes(b"\n".join([*lines[:2], bad, *lines[2:]]) + b"\n")
    else:
        src.write_bytes(b"\n".join([*lines, b"Sam has 1 cup."]) + b"\n")
        ref = tmp_path / "ref.txt"
        ref.write_bytes(b"\n".join([b"r1", b"r2", b"r\xc3", b"r4", b"r5"]) + b"\n")
        argv = ["--reference", str(ref)]
    out = tmp_path / "o.parquet"
    task = ["translation", "--src-lang", "eng_Latn", "--tgt-lang", "deu_Latn"] if argv else ["span"]
    assert main(["prepare", *task, "--input", str(src), "--output", str(out), "--no-progress", *argv]) == 0
    summary = json.loads(summary_path(out).read_text())
    assert summary["rows_read"] == 5 and summary["rows_skipped"] == {"bad_encoding": 1}
    assert "not UTF-8" in summary["errors"][0]
    assert "Traceback" not in capsys.readouterr().err


@FUZZ
@given(chunks=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), min_size=1, max_size=12))
def test_any_bytes_in_jsonl_are_accounted_for(chunks: list[bytes], tmp_path_factory) -> None:
    src = tmp_path_factory.mktemp("fuzz") / "x.jsonl"
    src.write_bytes(b"\n".join(chunks) + b"\n")
    records = list(open_source(src).records)  # never raises
    lines = [chunks[0].removeprefix(b"\xef\xbb\xbf"), *chunks[1:]]  # a UTF-8 BOM opening the file is dropped
    assert len(records) == sum(1 for c in lines if c.strip())
    for record in records:
        assert (record.data is None) != (record.error is None)


@FUZZ
@given(
    lines=st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"])), max_size=8
    )
)
def test_any_text_line_is_one_record(lines: list[str], tmp_path_factory) -> None:
    src = tmp_path_factory.mktemp("fuzz") / "x.txt"
    src.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    records = list(open_source(src).records)
    assert [r.data["text"] for r in records] == [line.strip() for line in lines]


def test_corrupt_parquet_is_one_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.parquet"
    src.write_bytes(b"PAR1 this is not parquet")
    assert prepare_math(src, tmp_path / "o.parquet") == 2
    assert "not a readable parquet file" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("where", ["under_a_file", "unwritable_folder"])
def test_unwritable_output_is_one_line_before_any_work(where: str, tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "raw.jsonl", PROBLEMS)
    if where == "under_a_file":
        out = src / "sub" / "o.parquet"
    else:  # not even root may make a folder here
        out = Path("/proc/self/dupo_no_such_folder/o.parquet")
    assert prepare_math(src, out) == 2
    assert str(out) in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [
        ["two-sum", "--num-problems", "5", "--operand-max", "1e20"],
        ["two-sum", "--num-problems", "5", "--operand-max", str(10**20)],
        ["two-sum", "--num-problems", str(10**12)],
        ["two-sum", "--num-problems", "-3"],
        ["two-sum", "--num-problems", "5", "--val-fraction", "nan"],
        ["math", "--input", "x.jsonl", "--timeout", "inf"],
        ["math", "--input", "x.jsonl", "--timeout", "nan"],
        ["math", "--input", "x.jsonl", "--timeout", "0"],
        ["math", "--input", "x.jsonl", "--max-duals-per-problem", "0"],
        ["span", "--input", "x.txt", "--lines-per-document", "0"],
        ["math", "--input", "x.jsonl", "--seed", str(10**30)],
        ["math", "--input", "x.jsonl", "--seed", "-1"],
        ["two-sum", "--num-problems", "5", "--seed", "nan"],
        *(
            [
                "translation",
                "--input",
                "x.txt",
                "--src-lang",
                "eng_Latn",
                "--tgt-lang",
                "deu_Latn",
                flag,
                value,
            ]
            for flag in ("--source-check-min-letters", "--language-check-min-letters")
            for value in ("99999999999999999999999", "-1", "inf", "nan")
        ),
    ],
)
def test_absurd_numbers_stop_at_the_door(argv: list[str], tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["prepare", *argv, "--output", str(tmp_path / "o.parquet")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].split(": error: argument ")[1].startswith("--")
    assert not (tmp_path / "o.parquet").exists()


def test_two_sum_range_too_small_is_one_line(tmp_path: Path, capsys) -> None:
    argv = [
        "prepare",
        "two-sum",
        "--num-problems",
        "50",
        "--operand-max",
        "3",
        "--output",
        str(tmp_path / "o.parquet"),
    ]
    assert main(argv) == 2
    assert "num_problems must be in 1..16" in one_error_line(capsys.readouterr().err)


# -- class 8: only the kept dual questions are built ---------------------------------------------------


def peak_bytes(text: str, cap: int = 8) -> tuple[int, int]:
    config = PrepareConfig(
        task=get_task("math"), rows=RowOptions(data_source="d", max_duals=cap), progress=False
    )
    tracemalloc.start()
    try:
        _, summary = build_rows([RawRecord(0, {"problem": text})], config)
        return tracemalloc.get_traced_memory()[1], summary.dual_questions
    finally:
        tracemalloc.stop()


def test_a_long_problem_builds_only_the_kept_questions() -> None:
    unit = "Tom has 3 apples and 25 pears; he buys 7 more. "
    text = unit * (200_000 // len(unit))  # ~12,000 maskable numbers
    peak, duals = peak_bytes(text)
    assert duals == 8
    # 8 masked copies, the prompt and the number spans; every copy built would be ~2.4 GB
    assert peak < 40 * len(text), peak


@FUZZ
@given(
    numbers=st.lists(st.integers(0, 10**6), min_size=1, max_size=30),
    seed=st.integers(0, 50),
    k=st.integers(1, 10),
)
def test_fewer_kept_questions_are_a_prefix_of_more(numbers: list[int], seed: int, k: int) -> None:
    problem = " and ".join(f"box {i} holds {n} coins" for i, n in enumerate(numbers)) + "."
    task = get_task("math")
    full = list(task.decompose({"problem": problem}, seed=seed).duals)
    lazy = task.decompose({"problem": problem}, seed=seed).duals
    assert list(lazy[:k]) == full[:k] and len(lazy) == len(full)
    assert len({d.variable for d in full}) == len(full)
    for dual in full:
        assert dual.variable not in problem and dual.masked_text.count(dual.variable) == 1


# -- class 9: data selects registered tasks only -------------------------------------------------------


@pytest.fixture
def trap_module(tmp_path: Path):
    """An installed module whose import leaves a mark: naming it in data must not import it."""
    name = f"dupo_trap_{os.getpid()}"
    mark = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(mark)!r}).write_text('yes')\n"
        "from dupo_verl.tasks.two_sum import TwoSumTask as Trap\n",
        encoding="utf-8",
    )
    sys.path.insert(0, str(tmp_path))
    yield name, mark
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def test_a_row_naming_a_module_does_not_import_it(trap_module, monkeypatch) -> None:
    name, mark = trap_module
    monkeypatch.delenv(TASK_MODULES_ENV, raising=False)
    info = {"task": f"{name}:Trap", "params": {"hide": "b"}, "duals": []}
    with pytest.raises(KeyError, match="not allowed to be imported"):
        task_from_info(info)
    assert name not in sys.modules and not mark.exists()


def test_rerank_rows_naming_a_module_are_invalid_and_not_imported(trap_module, tmp_path: Path) -> None:
    from dupo_verl.offline.rerank import RerankInput, build_jobs

    name, mark = trap_module
    row = {
        "prompt": [{"role": "user", "content": "1+2?"}],
        "extra_info": {"dupo": {"task": f"{name}:Trap", "duals": []}},
    }
    (job,) = build_jobs([row], RerankInput())
    assert job.error is not None and "not allowed" in job.error
    assert name not in sys.modules and not mark.exists()


def test_the_person_running_the_job_may_allow_a_module(trap_module, monkeypatch) -> None:
    name, mark = trap_module
    monkeypatch.setenv(TASK_MODULES_ENV, f"other, {name}")
    task, _ = task_from_info({"task": f"{name}:Trap", "params": {"hide": "a"}, "duals": []})
    assert task.params["hide"] == "a" and mark.exists()


def test_allow_task_modules_then_prepare_task_by_module_path(trap_module, tmp_path: Path, capsys) -> None:
    name, _ = trap_module
    out = tmp_path / "o.parquet"
    src = write_jsonl(tmp_path / "ab.jsonl", [{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    argv = [
        "prepare",
        "task",
        "--name",
        f"{name}:Trap",
        "--input",
        str(src),
        "--output",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 2
    assert "not allowed to be imported" in one_error_line(capsys.readouterr().err)
    assert main([*argv, "--import", name]) == 0
    assert pq.read_table(out).num_rows == 2


@pytest.mark.parametrize("command", ["prepare", "rerank"])
def test_an_output_that_is_not_a_regular_file_is_refused(command: str, tmp_path: Path, capsys) -> None:
    """Renaming over a device or pipe (say `--output /dev/null`) would replace it with a file."""
    src = write_jsonl(tmp_path / "raw.jsonl", PROBLEMS)
    fifo = tmp_path / "pipe.parquet"
    os.mkfifo(fifo)
    if command == "prepare":
        assert prepare_math(src, fifo) == 2
    else:
        assert (
            main(["rerank", "--input", str(src), "--output", str(fifo), "--backend", "hf", "--overwrite"])
            == 2
        )
    assert "not a regular file" in one_error_line(capsys.readouterr().err)
    assert fifo.is_fifo()


@FUZZ
@given(hops=st.lists(st.sampled_from([".", "sub", "..", "link"]), max_size=6))
def test_any_spelling_of_the_input_path_is_refused(hops: list[str], tmp_path_factory) -> None:
    """Any chain of `.`, `..`, a subfolder and a symlinked folder that lands on the input file (as
    the operating system resolves it, `..` after a symlink included) is refused; any other is not."""
    from dupo_verl.files import OutputError, check_outputs

    root = tmp_path_factory.mktemp("paths")
    (root / "sub").mkdir()
    (root / "link").symlink_to(root, target_is_directory=True)
    src = root / "in.jsonl"
    src.write_text("{}\n", encoding="utf-8")
    candidate = root.joinpath(*hops, "in.jsonl")
    lands_on_input = candidate.exists() and os.path.samefile(candidate, src)
    if lands_on_input:
        with pytest.raises(OutputError, match="refusing to write over an input"):
            check_outputs({"--output": candidate}, [src])
    elif candidate.parent.exists():
        check_outputs({"--output": candidate}, [src])
        assert src.read_text(encoding="utf-8") == "{}\n"
