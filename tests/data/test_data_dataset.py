"""`DuPODataset` as verl's `data.custom_cls`: raw jsonl in, rows with dual questions out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dupo_verl.cli import main


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


def make(files, tokenizer, tmp_path: Path, dupo: dict, max_samples: int = -1):
    from verl.utils.dataset.rl_dataset import get_dataset_class

    config = OmegaConf.create(
        {
            "max_prompt_length": 8192,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "cache_dir": str(tmp_path / "cache"),
            "custom_cls": {"path": "pkg://dupo_verl.data.dataset", "name": "DuPODataset"},
            "dupo": dupo,
        }
    )
    cls = get_dataset_class(config)
    assert cls.__name__ == "DuPODataset"
    return cls(data_files=files, tokenizer=tokenizer, processor=None, config=config, max_samples=max_samples)


def test_raw_math_jsonl_matches_prepare(shared_data: Path, tmp_path: Path, tokenizer) -> None:
    src = shared_data / "math" / "amc2023.jsonl"
    options = {
        "task": "math",
        "problem_key": "problem",
        "answer_key": "answer",
        "seed": 5,
        "max_duals_per_problem": 3,
    }
    dataset = make(str(src), tokenizer, tmp_path, options)
    out = tmp_path / "amc.parquet"
    argv = [
        "prepare",
        "math",
        "--input",
        str(src),
        "--output",
        str(out),
        "--answer-key",
        "answer",
        "--seed",
        "5",
    ]
    assert main([*argv, "--max-duals-per-problem", "3", "--no-progress"]) == 0
    prepared = make(str(out), tokenizer, tmp_path, {})  # a prepared file is read as it is
    assert len(dataset) == len(prepared) == 36
    for i in range(len(dataset)):
        raw, ready = dataset[i], prepared[i]
        assert raw["raw_prompt"] == ready["raw_prompt"]
        assert raw["extra_info"] == ready["extra_info"]
        assert raw["reward_model"] == ready["reward_model"] and raw["agent_name"] == "dupo_agent"


def test_translation_params_from_the_data_config(shared_data: Path, tmp_path: Path, tokenizer) -> None:
    lines = (
        (shared_data / "translation" / "flores_devtest" / "spa_Latn.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    src = tmp_path / "es.jsonl"
    src.write_text(
        "".join(json.dumps({"sentence": s}, ensure_ascii=False) + "\n" for s in lines[:20]), encoding="utf-8"
    )
    options = {
        "task": "translation",
        "source_key": "sentence",
        "src_lang": "spa_Latn",
        "tgt_lang": "eng_Latn",
        "params": {"similarity": "chrf++"},
        "split": "val",
    }
    dataset = make([str(src)], tokenizer, tmp_path, options, max_samples=8)
    assert len(dataset) == 8
    item = dataset[0]
    assert "Spanish text into English" in item["raw_prompt"][0]["content"]
    assert (
        item["extra_info"]["split"] == "val"
        and item["extra_info"]["dupo"]["params"]["similarity"] == "chrf++"
    )
    assert item["extra_info"]["dupo"]["duals"][0]["value"] == lines[0]
    assert item["data_source"] == "dupo/translation/spa_Latn-eng_Latn"


def test_raw_data_needs_a_task(shared_data: Path, tmp_path: Path, tokenizer) -> None:
    with pytest.raises(ValueError, match=r"data\.dupo\.task"):
        make(str(shared_data / "math" / "amc2023.jsonl"), tokenizer, tmp_path, {})


def test_params_that_are_not_a_mapping_are_named(shared_data: Path, tmp_path: Path, tokenizer) -> None:
    options = {"task": "math", "params": '{"timeout": 3}'}
    with pytest.raises(ValueError, match=r"data\.dupo\.params must be a mapping of task parameters, got str"):
        make(str(shared_data / "math" / "amc2023.jsonl"), tokenizer, tmp_path, options)


BAD_OPTIONS = [
    ("seed", "abc"),  # was "invalid literal for int()"
    ("seed", float("nan")),  # was "cannot convert float NaN to integer"
    ("seed", 1.5),  # was truncated to 1
    ("seed", -1),
    ("max_duals_per_problem", "2"),  # was TypeError "'<' not supported"
    ("max_duals_per_problem", float("nan")),  # removed the cap
    ("max_duals_per_problem", 0),
    ("max_duals_per_problem", True),
    ("keep_unmaskable", "yes"),
    ("keep_unmaskable", 1),
    ("strict", "no"),
    ("agent_name", ""),  # no agent loop has that name
    ("id_key", None),  # was the column "None"
    ("split", None),
    ("problem_key", None),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS, ids=[f"{n}={v!r}" for n, v in BAD_OPTIONS])
def test_a_bad_adapter_option_is_named(shared_data: Path, tmp_path: Path, tokenizer, name, value) -> None:
    options = {"task": "math", name: value}
    with pytest.raises(ValueError, match=rf"^data\.dupo\.{name} must be ") as info:
        make(str(shared_data / "math" / "amc2023.jsonl"), tokenizer, tmp_path, options)
    assert "\n" not in str(info.value)


def test_booleans_may_be_quoted_and_null_removes_the_cap(tmp_path: Path, tokenizer) -> None:
    """Hydra gives a bool for `=true`; a quoted 'false' stays text, which `bool()` read as True."""
    src = tmp_path / "raw.jsonl"
    rows = [
        {"problem": "Tom has 5 apples and eats 2. How many are left?", "answer": "3"},
        {"problem": "No numbers."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    kept = make(str(src), tokenizer, tmp_path, {"task": "math", "keep_unmaskable": "TRUE", "strict": False})
    dropped = make(str(src), tokenizer, tmp_path, {"task": "math", "keep_unmaskable": "false"})
    assert (len(kept), len(dropped)) == (2, 1)
    for cap, duals in ((1, 1), (None, 2)):
        capped = make(str(src), tokenizer, tmp_path, {"task": "math", "max_duals_per_problem": cap})
        assert len(capped[0]["extra_info"]["dupo"]["duals"]) == duals
