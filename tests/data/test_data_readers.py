"""Input readers: every format yields the same records, bad rows are reported, not raised."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dupo_verl.data.readers import InputError, open_source


@pytest.fixture(scope="module")
def gsm8k(shared_data: Path) -> list[dict]:
    with (shared_data / "math" / "gsm8k_test.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(30), f, strict=False)]


def records(path, **kwargs) -> list:
    source = open_source(path, **kwargs)
    return list(source.records)


def test_all_formats_agree(tmp_path: Path, gsm8k: list[dict]) -> None:
    import datasets
    import pandas as pd

    fields = ["id", "problem", "answer"]
    rows = [{k: r[k] for k in fields} for r in gsm8k]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps({"data": rows}), encoding="utf-8")
    (tmp_path / "d.json").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )  # json lines
    pd.DataFrame(rows).to_parquet(tmp_path / "e.parquet")
    for name, delimiter in (("f.csv", ","), ("g.tsv", "\t")):
        with (tmp_path / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, delimiter=delimiter)
            writer.writeheader()
            writer.writerows(rows)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "h"))
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "i"))
    for name in ("a.jsonl", "b.json", "c.json", "d.json", "e.parquet", "f.csv", "g.tsv", "h", "i"):
        got = records(tmp_path / name)
        assert [r.index for r in got] == list(range(30)), name
        assert [r.data for r in got] == rows, name
    assert open_source(tmp_path / "e.parquet").total == 30
    assert open_source(tmp_path / "i").stem == "i"


def test_bad_lines_are_records_with_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "1+1"}\n{not json\n\n[1, 2]\n{"problem": "2+2"}\n', encoding="utf-8")
    got = records(path)
    assert [r.index for r in got] == [0, 1, 2, 3]  # the blank line is not a row
    assert got[1].error[0] == "bad_json" and "bad.jsonl:2" in got[1].error[1]
    assert got[2].error[0] == "not_an_object"
    assert got[3].data == {"problem": "2+2"}
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("problem,answer\n1+1,2\n2+2,4,extra\n", encoding="utf-8")
    assert [r.error[0] if r.error else None for r in records(ragged)] == [None, "bad_csv_row"]


def test_plain_text_lines_and_references(shared_data: Path) -> None:
    flores = shared_data / "translation" / "flores_devtest"
    got = records(flores / "eng_Latn.txt", reference=flores / "zho_Hans.txt")
    assert len(got) == 1012
    assert got[0].data["text"].startswith('"We now have 4-month-old mice')
    assert got[0].data["reference"].startswith("他补充道")
    grouped = records(flores / "eng_Latn.txt", lines_per_record=5)
    assert len(grouped) == 203 and grouped[1].data["text"].startswith("Previously, Ring's CEO")


def test_input_problems_raise(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "missing.jsonl")
    (tmp_path / "x.xml").write_text("<a/>", encoding="utf-8")
    with pytest.raises(InputError, match="unknown input format"):
        open_source(tmp_path / "x.xml")
    short = tmp_path / "short.txt"
    short.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(InputError, match="not aligned"):
        open_source(shared_data / "translation" / "flores_devtest" / "eng_Latn.txt", reference=short)
    (tmp_path / "broken.json").write_text('{"a": [1,', encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        open_source(tmp_path / "broken.json")
    import datasets

    datasets.DatasetDict(
        {"a": datasets.Dataset.from_list([{"x": 1}]), "b": datasets.Dataset.from_list([{"x": 2}])}
    ).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(InputError, match="pick one with --split"):
        open_source(tmp_path / "two")
    assert [r.data for r in records(tmp_path / "two", split="b")] == [{"x": 2}]
