"""The translation (back-translation) task on FLORES devtest sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupo_verl.tasks import get_task
from dupo_verl.tasks.languages import FLORES_NAMES, language_name

FLORES = ("eng_Latn", "zho_Hans", "deu_Latn", "fra_Latn", "jpn_Jpan", "spa_Latn")


def lines(shared_data: Path, code: str) -> list[str]:
    return (
        (shared_data / "translation" / "flores_devtest" / f"{code}.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )


def test_language_names_cover_flores_and_common_codes(shared_data: Path) -> None:
    on_disk = sorted(p.stem for p in (shared_data / "translation" / "flores_devtest").glob("*.txt"))
    assert set(on_disk) <= set(FLORES_NAMES)
    for code in (*FLORES, "kor_Hang", "hun_Latn", "rus_Cyrl", "arb_Arab", "por_Latn"):
        assert language_name(code)
    assert language_name("zho_Hans") == "Chinese (Simplified)"
    assert language_name("xyz_Latn", "Xyzish") == "Xyzish"
    with pytest.raises(ValueError, match="unknown language code 'xyz_Latn'"):
        language_name("xyz_Latn")
    with pytest.raises(ValueError, match="FLORES codes look like"):
        get_task("translation", src_lang="en", tgt_lang="zho_Hans")


def test_prompts_name_the_languages(shared_data: Path) -> None:
    en, de = lines(shared_data, "eng_Latn"), lines(shared_data, "deu_Latn")
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn")
    example = {"source": en[3], "reference": de[3]}
    (dual,) = task.decompose(example).duals
    assert (dual.masked_text, dual.variable, dual.value) == ("", "", en[3])
    primal = task.primal_messages(example)[0]["content"]
    assert "from English" not in primal and "English text into German" in primal and primal.endswith(en[3])
    back = task.dual_messages(dual, de[3])[0]["content"]
    assert "German text into English" in back and back.endswith(de[3])
    assert task.row_extra_info(example) == {
        "src_lang": "eng_Latn",
        "tgt_lang": "deu_Latn",
        "reference": de[3],
    }
    assert task.ground_truth(example) == de[3]


def test_scores(shared_data: Path) -> None:
    en, zh, fr = (
        lines(shared_data, "eng_Latn"),
        lines(shared_data, "zho_Hans"),
        lines(shared_data, "fra_Latn"),
    )
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="zho_Hans")
    (dual,) = task.decompose({"source": en[10]}).duals
    assert task.score_reconstruction(dual, en[10]) == pytest.approx(1.0)
    assert task.score_reconstruction(dual, f"English: {en[10]}") == pytest.approx(1.0)  # label stripped
    assert task.score_reconstruction(dual, f"<think>let me see</think>\n{en[10]}") == pytest.approx(1.0)
    unrelated = task.score_reconstruction(dual, en[500])
    assert 0.0 < unrelated < 0.4
    assert task.score_reconstruction(dual, "") == 0.0
    # the gold label is the reference translation, scored by chrF
    assert task.gold_score(zh[10], zh[10]) == pytest.approx(1.0)
    assert task.gold_score(zh[11], zh[10]) < 0.5
    assert task.gold_score(zh[10], "") is None
    bleu = get_task("translation", src_lang="fra_Latn", tgt_lang="eng_Latn", similarity="bleu")
    (fr_dual,) = bleu.decompose({"source": fr[0]}).duals
    assert bleu.score_reconstruction(fr_dual, fr[0]) == pytest.approx(1.0)


def test_copying_the_source_leaks(shared_data: Path) -> None:
    en, zh = lines(shared_data, "eng_Latn"), lines(shared_data, "zho_Hans")
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="zho_Hans")
    leaked = sum(task.leaks(task.decompose({"source": s}).duals[0], s) for s in en[:50])
    honest = sum(
        task.leaks(task.decompose({"source": s}).duals[0], t) for s, t in zip(en[:50], zh[:50], strict=True)
    )
    assert leaked == 50 and honest == 0
    same_language = get_task("translation", src_lang="eng_Latn", tgt_lang="eng_Latn")
    assert not same_language.leaks(same_language.decompose({"source": en[0]}).duals[0], en[0])


def test_empty_source_is_skipped_and_params_rebuild() -> None:
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="jpn_Jpan")
    decomposition = task.decompose({"source": "   "})
    assert decomposition.duals == [] and decomposition.skipped["empty_source"] == 1
    again = get_task("translation", **task.params)
    assert again.params == task.params and again.tgt_name == "Japanese"
    with pytest.raises(ValueError, match="similarity"):
        get_task("translation", src_lang="eng_Latn", tgt_lang="jpn_Jpan", similarity="rouge")
