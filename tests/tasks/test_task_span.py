"""The masked-span task on small real examples: GSM8K questions as QA, FLORES lines as a document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dupo_verl.tasks import get_task


@pytest.fixture(scope="module")
def question(shared_data: Path) -> str:
    with (shared_data / "math" / "gsm8k_test.jsonl").open(encoding="utf-8") as f:
        return json.loads(f.readline())["problem"]  # Janet's ducks


@pytest.fixture(scope="module")
def document(shared_data: Path) -> str:
    lines = (
        (shared_data / "translation" / "flores_devtest" / "eng_Latn.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    return " ".join(lines[5:10])  # one article: Ring's doorbell and its CEO Siminoff


def test_question_keywords(question: str) -> None:
    task = get_task("span")
    assert task.params == {"mode": "question", "similarity": "token_f1"}
    duals = task.decompose({"text": question}).duals
    assert len(duals) >= 5
    for dual in duals:
        assert dual.variable == "[BLANK]" and dual.value.lower() not in dual.masked_text.lower().split()
        assert dual.masked_text.replace("[BLANK]", dual.value) == question or dual.value.lower() != dual.value
        assert len(dual.value) >= 3 and dual.value.isalpha()
    # stop words and numbers are never hidden
    assert not {d.value.lower() for d in duals} & {"the", "she", "for", "every", "16", "does"}
    market = next(d for d in duals if d.value == "market")  # appears twice: both are hidden
    assert market.masked_text.count("[BLANK]") == 2 and "market" not in market.masked_text


def test_question_dual_prompt_and_scores(question: str) -> None:
    task = get_task("span")
    dual = task.decompose({"text": question}).duals[0]
    prompt = task.dual_messages(dual, "She makes $18 every day.")[0]["content"]
    assert dual.masked_text in prompt and "She makes $18 every day." in prompt and "[BLANK]" in prompt
    assert task.score_reconstruction(dual, dual.value) == 1.0
    assert task.score_reconstruction(dual, f"{dual.value.upper()}\nbecause ...") == 1.0
    assert task.score_reconstruction(dual, "zebra") == 0.0
    assert not task.leaks(dual, f"It is about {dual.value}.")  # naming the keyword is a good answer
    assert task.gold_score("18", "18") == 1.0 and task.gold_score("nothing", "") is None


def test_document_sentences(document: str) -> None:
    task = get_task("span", mode="document")
    assert task.params == {"mode": "document", "similarity": "rouge_l"}
    duals = task.decompose({"text": document}).duals
    assert len(duals) == 5  # one per sentence
    for dual in duals:
        assert dual.value in document and dual.masked_text == document.replace(dual.value, "[BLANK]", 1)
        assert dual.value.endswith((".", '"'))
    # the most central sentence comes first: it shares the most content words with the others
    assert "Siminoff" in duals[0].value
    summary = "Ring's CEO Siminoff built a WiFi doorbell, went on Shark Tank and QVC, and settled with ADT."
    assert summary in task.dual_messages(duals[0], summary)[0]["content"]
    assert task.score_reconstruction(duals[0], duals[0].value) == pytest.approx(1.0)
    assert 0.0 <= task.score_reconstruction(duals[0], summary) < 0.6
    assert task.leaks(duals[0], f"Summary: {duals[0].value}")
    assert not task.leaks(duals[0], summary)


def test_abbreviations_do_not_end_sentences(shared_data: Path) -> None:
    lines = (
        (shared_data / "translation" / "flores_devtest" / "eng_Latn.txt")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    duals = get_task("span", mode="document").decompose({"text": " ".join(lines[:3])}).duals
    assert any(d.value.startswith("Dr. Ehud Ur,") for d in duals)


def test_too_short_or_unusable_texts_are_counted() -> None:
    doc = get_task("span", mode="document")
    assert doc.decompose({"text": "Only one sentence here."}).skipped == {"too_few_sentences": 1}
    qa = get_task("span")
    assert qa.decompose({"text": "Is it so?"}).skipped == {"no_keyword": 1}
    assert qa.decompose({"text": "  "}).skipped == {"empty_text": 1}
    with pytest.raises(ValueError, match="mode"):
        get_task("span", mode="dialogue")
