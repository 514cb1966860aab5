"""Text similarities on real FLORES sentences, the CJK tokenizers and their missing-package error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reward_fns.text import (
    SIMILARITIES,
    MissingTokenizerError,
    bleu,
    chrf,
    chrf_pp,
    exact_match,
    rouge_l,
    similarity,
    token_f1,
    tokenizer_for,
)


@pytest.fixture(scope="module")
def flores(shared_data: Path) -> dict[str, list[str]]:
    folder = shared_data / "translation" / "flores_devtest"
    lines = {lang: (folder / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
             for lang in ("eng_Latn", "zho_Hans", "jpn_Jpan")}
    assert all(len(v) == 1012 for v in lines.values())
    return lines


@pytest.mark.parametrize("lang", ["eng_Latn", "zho_Hans", "jpn_Jpan"])
@pytest.mark.parametrize("metric", [bleu, chrf, chrf_pp])
def test_flores_sentence_with_itself_scores_one_and_unrelated_scores_low(flores, lang, metric):
    if lang == "jpn_Jpan" and metric is bleu:
        pytest.importorskip("MeCab", reason="ja-mecab needs sacrebleu[ja] (the cjk extra)")
    lines = flores[lang]
    picks = range(0, 1012, 40)
    assert [metric(lines[i], lines[i], lang) for i in picks] == [1.0] * len(picks)
    unrelated = [metric(lines[i], lines[(i + 506) % 1012], lang) for i in picks]  # other articles
    assert max(unrelated) < 0.35, unrelated
    assert sum(unrelated) / len(unrelated) < 0.25, unrelated


@pytest.mark.parametrize(
    ("lang", "tokenizer"),
    [("zho_Hans", "zh"), ("zho_Hant", "zh"), ("zh", "zh"), ("zh-CN", "zh"), ("jpn_Jpan", "ja-mecab"),
     ("ja", "ja-mecab"), ("kor_Hang", "ko-mecab"), ("ko", "ko-mecab"), ("eng_Latn", "13a"),
     ("deu_Latn", "13a"), ("fr", "13a"), (None, "13a"), ("Chinese", "zh"), ("Japanese", "ja-mecab"),
     ("yue_Hant", "zh"), ("sr-Cyrl", "13a"), ("und_Hans", "zh"), ("xx_Jpan", "ja-mecab")],
)
def test_tokenizer_for_flores_and_iso_codes(lang, tokenizer):
    assert tokenizer_for(lang) == tokenizer


def test_chinese_bleu_uses_the_zh_tokenizer(flores):
    """One changed character costs little under the zh tokenizer but most of the score under 13a,
    which sees an unsegmented Chinese sentence as a few long 'words'."""
    ref = flores["zho_Hans"][0]
    hyp = ref[:5] + "猫" + ref[6:]
    assert bleu(hyp, ref, "zho_Hans") > 0.85
    assert bleu(hyp, ref, "eng_Latn") < 0.7  # a code naming a Latin script: 13a
    assert bleu(hyp, ref, "zh") == bleu(hyp, ref, "zho_Hans")


@pytest.mark.parametrize("lang", [None, "", "Klingon", "xx", "zh-Hans", "Chinese (Simplified)", "Mandarin", "yue_Hant"])
def test_an_unknown_or_named_language_still_scores_chinese_with_the_zh_tokenizer(flores, lang):
    """An unknown code or missing language used to fall back to 13a, scoring a one-character slip
    in a Chinese sentence near zero; the reference's script (or the name) now decides."""
    ref = flores["zho_Hans"][0]
    hyp = ref[:5] + "猫" + ref[6:]
    assert bleu(hyp, ref, lang) == bleu(hyp, ref, "zho_Hans") > 0.85


def test_an_unknown_language_with_a_japanese_reference_scores_per_character_without_mecab(flores):
    ref = flores["jpn_Jpan"][3]
    hyp = ref[:4] + "猫" + ref[5:]
    assert tokenizer_for("xx", ref) == tokenizer_for(None, ref) == "char"
    assert 0.6 < bleu(hyp, ref, "xx") < 1.0
    assert bleu(ref, ref, None) == 1.0


@pytest.mark.parametrize("lang", [None, "xx", "fr", "eng_Latn"])
def test_an_english_reference_keeps_13a_whatever_the_language_says(flores, lang):
    assert tokenizer_for(lang, flores["eng_Latn"][0]) == "13a"


def test_japanese_and_korean_bleu_with_mecab(flores):
    pytest.importorskip("MeCab", reason="ja-mecab needs sacrebleu[ja] (the cjk extra)")
    pytest.importorskip("mecab_ko", reason="ko-mecab needs sacrebleu[ko] (the cjk extra)")
    ref = flores["jpn_Jpan"][3]
    hyp = ref[:4] + "猫" + ref[5:]
    assert bleu(hyp, ref, "jpn_Jpan") > bleu(hyp, ref, "eng_Latn")
    assert bleu("나는 어제 학교에 갔다", "나는 어제 학교에 갔다", "kor_Hang") == 1.0
    assert 0.0 < bleu("나는 어제 학교에 갔다", "나는 오늘 학교에 갔다", "ko") < 1.0


@pytest.mark.parametrize(("lang", "package"), [("jpn_Jpan", "MeCab"), ("ko", "mecab_ko")])
def test_missing_mecab_package_raises_a_clear_error_naming_the_extra(lang, package):
    """Runs in a fresh interpreter where the MeCab module cannot be imported (as when not installed)."""
    code = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from reward_fns.text import bleu, chrf, MissingTokenizerError\n"
        f"assert chrf('a b', 'a b', {lang!r}) == 1.0  # chrF needs no tokenizer\n"
        "try:\n"
        f"    bleu('a b c d', 'a b c d', {lang!r})\n"
        "except MissingTokenizerError as err:\n"
        "    print(err)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "pip install 'dupo-verl[cjk]'" in out.stdout
    assert issubclass(MissingTokenizerError, ImportError)


def test_rouge_l_token_f1_exact_match():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("the cat sat", "the cat sat down") == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert rouge_l("mat the on sat cat the", "the cat sat on the mat") == 0.5  # LCS "the on the"
    assert rouge_l("我们现在有", "我们有") == pytest.approx(2 * 0.6 * 1.0 / 1.6)  # one token per Han character
    assert rouge_l("", "") == 1.0 and rouge_l("", "x") == 0.0
    assert token_f1("The Eiffel Tower!", "eiffel tower") == 1.0
    assert token_f1("a red car", "the blue car") == pytest.approx(0.5)
    assert token_f1("apple", "pear") == 0.0
    assert exact_match("  The answer: Paris. ", "answer paris") == 1.0
    assert exact_match("Paris", "London") == 0.0


def test_similarity_dispatch_matches_the_functions(flores):
    hyp, ref = flores["eng_Latn"][10], flores["eng_Latn"][11]
    direct = {"bleu": bleu(hyp, ref), "chrf": chrf(hyp, ref), "chrf++": chrf_pp(hyp, ref),
              "rouge_l": rouge_l(hyp, ref), "token_f1": token_f1(hyp, ref), "exact_match": exact_match(hyp, ref)}
    assert set(direct) == set(SIMILARITIES)
    assert {name: similarity(name, hyp, ref) for name in SIMILARITIES} == direct
    with pytest.raises(ValueError, match="unknown similarity 'cosine'"):
        similarity("cosine", hyp, ref)


def test_non_string_input_is_a_clear_type_error():
    with pytest.raises(TypeError, match="expected a string"):
        bleu(None, "x")
    with pytest.raises(TypeError, match="language code"):
        chrf("x", "x", lang=3)


@pytest.mark.parametrize("name", ["token_f1", "exact_match", "rouge_l"])
def test_texts_with_no_tokens_left_match_only_when_they_are_the_same_text(name):
    """Both sides normalised to no tokens used to score 1.0: "the" equalled "a", "!!!" equalled "???"."""
    assert similarity(name, "the", "a") == 0.0
    assert similarity(name, "!!!", "???") == 0.0
    assert similarity(name, "The", "the") == 1.0
    assert similarity(name, "!!!", "!!!") == 1.0


@pytest.mark.parametrize("name", SIMILARITIES)
def test_direction_marks_are_not_scored(name):
    """A right-to-left override around a word lowered chrF to 0.75; the math path already ignored it."""
    assert similarity(name, "\u202ehello world\u202c", "hello world") == similarity(name, "hello world", "hello world")


@pytest.mark.parametrize("metric", SIMILARITIES)
def test_two_different_lone_surrogates_are_different_text(metric):
    assert similarity(metric, "\ud800", "\ud800") == 1.0
    assert similarity(metric, "\ud800", "\udfff") < 1.0
    assert similarity(metric, "\ud800", "?") < 1.0  # not read as the replacement character


def test_ligatures_are_text_for_bleu_and_chrf_and_normalised_for_the_token_metrics():
    assert similarity("chrf", "ﬁnal", "final") < 1.0  # sacrebleu's own reading
    assert similarity("token_f1", "ﬁnal", "final") == 1.0  # SQuAD-style, with NFKC
