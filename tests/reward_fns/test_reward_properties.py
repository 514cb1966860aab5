"""Hypothesis: random and adversarial strings never make a public function raise, hang or leave [0, 1]."""

from __future__ import annotations

import math
import threading
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_fns import compute_score
from reward_fns.math import answers_equal, extract_answer, math_accuracy, parse_number
from reward_fns.shaping import exp_shaping
from reward_fns.structured import json_similarity
from reward_fns.text import SIMILARITIES, lcs_length, similarity

ADVERSARIAL = [
    "\\boxed{" * 10_000,
    "\\boxed{" * 10_000 + "5" + "}" * 10_000,
    "{" * 100_000 + "}" * 99_999,
    "x" * 1_000_000,
    "9" * 1_000_000,
    "1,000" * 200_000,
    "10^{10^{10^{10}}}",
    "\\frac{1}{10^{10^{10^{10}}}}",
    "\\frac{\\frac{\\frac{1}{2}}{3}}{4}" * 50,
    "(10^{7})! - (10^{7})! + 5",
    "\\boxed{" + "\\frac{1}{" * 500 + "}" * 500 + "}",
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    "NaN",
    "１２３",
    "½ ⅓ ∞ √2 −5",
    "\u202e\u200b\ufeff",
    "\ud800 lone surrogate",
    "\x00\x01\x02",
    "😀" * 10_000,
    "他补充道：“我们现在有 4 个月大没有糖尿病的老鼠。”",
    "\\text{" + "a" * 10_000,
    "#### " + "9" * 5_000,
    "The answer is " + "(" * 10_000,
    "$" * 10_001,
    "\\\\" * 50_000,
]
LANGS = [None, "eng_Latn", "zho_Hans", "zh", "jpn_Jpan", "ko", "deu_Latn"]
TEXTS = st.one_of(st.text(max_size=300), st.sampled_from(ADVERSARIAL))
BOUND_S = 120.0  # generous: helper startup on a loaded machine plus the 2 s check bound


def bounded(fn, *args):
    """Run ``fn`` on a worker thread (as reward code does) and fail if it has not returned in BOUND_S."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - reported below
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"{fn.__name__} did not return within {BOUND_S}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(TEXTS)
def test_extract_answer(text):
    answer = bounded(extract_answer, text)
    assert answer is None or (isinstance(answer, str) and 0 < len(answer) <= 1000)


@SETTINGS
@given(TEXTS)
def test_parse_number(text):
    value = bounded(parse_number, text)
    assert value is None or isinstance(value, Fraction)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(TEXTS, TEXTS)
def test_answers_equal_and_math_accuracy(pred, gold):
    assert bounded(answers_equal, pred, gold) in (True, False)
    assert bounded(math_accuracy, pred, gold) in (0.0, 1.0)


@SETTINGS
@given(TEXTS)
def test_answers_equal_is_reflexive_on_plain_numbers(text):
    if parse_number(text) is not None:
        assert bounded(answers_equal, text, text) is True


@SETTINGS
@given(st.sampled_from(SIMILARITIES), TEXTS, TEXTS, st.sampled_from(LANGS))
def test_similarities_stay_in_unit_interval(name, hyp, ref, lang):
    score = bounded(similarity, name, hyp, ref, lang)
    assert 0.0 <= score <= 1.0


@SETTINGS
@given(st.sampled_from(SIMILARITIES), st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
def test_similarity_of_a_text_with_itself_is_one(name, text):
    if name == "bleu" or not any(c.isalnum() for c in text):
        return  # BLEU needs 4-grams' worth of tokens; punctuation-only texts normalize to nothing
    assert bounded(similarity, name, text, text) == 1.0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(st.one_of(JSON, TEXTS), st.one_of(JSON, TEXTS))
def test_json_similarity(a, b):
    assert 0.0 <= bounded(json_similarity, a, b) <= 1.0


@SETTINGS
@given(JSON)
def test_json_similarity_of_a_value_with_itself_is_one(value):
    assert json_similarity(value, value) == 1.0


@SETTINGS
@given(st.floats(min_value=0, allow_infinity=True), st.floats(min_value=0, max_value=1e6))
def test_exp_shaping(distance, lam):
    reward = exp_shaping(distance, lam)
    assert 0.0 <= reward <= 1.0
    assert math.isclose(reward, math.exp(-lam * distance)) or (lam == 0 and reward == 1.0)


@SETTINGS
@given(st.lists(st.sampled_from("abcd"), max_size=30), st.lists(st.sampled_from("abcd"), max_size=30))
def test_bit_parallel_lcs_matches_dynamic_programming(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    assert lcs_length(a, b) == table[len(a)][len(b)]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["openai/gsm8k", "math500", "flores", "two_sum"]), TEXTS, TEXTS)
def test_compute_score(source, response, truth):
    result = bounded(compute_score, source, response, truth, {"tgt_lang": "zho_Hans"})
    assert 0.0 <= result["score"] <= 1.0
    expected = {"score", "bleu", "chrf"} if source == "flores" else {"score", "acc", "pred", "verify_timeouts"}
    expected.add("gold_missing")
    assert set(result) == expected


def test_every_adversarial_string_through_every_function():
    """Deterministic companion of the sampled tests above: each adversarial string, each function."""
    for text in ADVERSARIAL:
        bounded(extract_answer, text)
        bounded(parse_number, text)
        assert bounded(answers_equal, text, "5", 0.5) is False  # the other order: sampled tests above
        assert bounded(math_accuracy, text, "5") in (0.0, 1.0)
        for name in SIMILARITIES:
            for lang in (None, "zho_Hans", "jpn_Jpan"):
                assert 0.0 <= bounded(similarity, name, text, "reference text 5", lang) <= 1.0
        assert 0.0 <= bounded(json_similarity, text, text[:100]) <= 1.0
        for source in ("gsm8k", "flores"):
            assert 0.0 <= bounded(compute_score, source, text, "5", {"tgt_lang": "zho_Hans"})["score"] <= 1.0
