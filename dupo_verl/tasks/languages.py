"""Readable names for FLORES-200 language codes (`eng_Latn`, `zho_Hans`, ...), used in prompts.

Models follow "Translate from English to Chinese (Simplified)" far better than a bare code. Codes
not listed here need an explicit name (`--src-name` / `--tgt-name`, task params `src_name` /
`tgt_name`).
"""

from __future__ import annotations

import re

FLORES_NAMES: dict[str, str] = {
    "afr_Latn": "Afrikaans",
    "amh_Ethi": "Amharic",
    "arb_Arab": "Arabic",
    "azj_Latn": "Azerbaijani",
    "bel_Cyrl": "Belarusian",
    "ben_Beng": "Bengali",
    "bul_Cyrl": "Bulgarian",
    "cat_Latn": "Catalan",
    "ces_Latn": "Czech",
    "cym_Latn": "Welsh",
    "dan_Latn": "Danish",
    "deu_Latn": "German",
    "ell_Grek": "Greek",
    "eng_Latn": "English",
    "est_Latn": "Estonian",
    "eus_Latn": "Basque",
    "fin_Latn": "Finnish",
    "fra_Latn": "French",
    "gle_Latn": "Irish",
    "glg_Latn": "Galician",
    "guj_Gujr": "Gujarati",
    "hau_Latn": "Hausa",
    "heb_Hebr": "Hebrew",
    "hin_Deva": "Hindi",
    "hrv_Latn": "Croatian",
    "hun_Latn": "Hungarian",
    "hye_Armn": "Armenian",
    "ind_Latn": "Indonesian",
    "isl_Latn": "Icelandic",
    "ita_Latn": "Italian",
    "jpn_Jpan": "Japanese",
    "kat_Geor": "Georgian",
    "kaz_Cyrl": "Kazakh",
    "khm_Khmr": "Khmer",
    "kor_Hang": "Korean",
    "lit_Latn": "Lithuanian",
    "lvs_Latn": "Latvian",
    "mal_Mlym": "Malayalam",
    "mar_Deva": "Marathi",
    "mkd_Cyrl": "Macedonian",
    "mya_Mymr": "Burmese",
    "nld_Latn": "Dutch",
    "nob_Latn": "Norwegian Bokmål",
    "npi_Deva": "Nepali",
    "pes_Arab": "Persian",
    "pol_Latn": "Polish",
    "por_Latn": "Portuguese",
    "ron_Latn": "Romanian",
    "rus_Cyrl": "Russian",
    "slk_Latn": "Slovak",
    "slv_Latn": "Slovenian",
    "spa_Latn": "Spanish",
    "srp_Cyrl": "Serbian",
    "swe_Latn": "Swedish",
    "swh_Latn": "Swahili",
    "tam_Taml": "Tamil",
    "tel_Telu": "Telugu",
    "tgl_Latn": "Tagalog",
    "tha_Thai": "Thai",
    "tur_Latn": "Turkish",
    "ukr_Cyrl": "Ukrainian",
    "urd_Arab": "Urdu",
    "uzn_Latn": "Uzbek",
    "vie_Latn": "Vietnamese",
    "yue_Hant": "Cantonese",
    "zho_Hans": "Chinese (Simplified)",
    "zho_Hant": "Chinese (Traditional)",
    "zsm_Latn": "Malay",
    "zul_Latn": "Zulu",
}

_FLORES_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


MAX_NAME_CHARS = 64


def language_name(code: str, name: str | None = None) -> str:
    """The readable name of a FLORES code; `name` overrides it (and is required for unknown codes).

    The name is pasted into every prompt, so it must be one short line of text, not any value a
    task param may carry (a list or mapping would be written into the prompt as its repr).
    """
    if name is not None and name != "":
        if not isinstance(name, str) or not name.strip() or "\n" in name or len(name) > MAX_NAME_CHARS:
            raise ValueError(
                f"the language name for {code!r} must be one line of text (at most {MAX_NAME_CHARS} "
                f"characters), got {name!r:.80}"
            )
        return name.strip()
    if not isinstance(code, str):
        raise ValueError(f"a language code must be text like 'eng_Latn', got {code!r:.80}")
    if code in FLORES_NAMES:
        return FLORES_NAMES[code]
    hint = "" if _FLORES_CODE.match(code or "") else " (FLORES codes look like 'eng_Latn')"
    raise ValueError(
        f"unknown language code {code!r}{hint}; give its name explicitly (--src-name/--tgt-name, "
        f"task params src_name/tgt_name) or use one of: {', '.join(sorted(FLORES_NAMES))}"
    )

# ISO 639-1 of each FLORES language in `FLORES_NAMES` (the labels language detectors output);
# FLORES uses individual-language codes (arb, pes, zsm, ...) where ISO 639-1 has the macrolanguage.
_FLORES_ISO1: dict[str, str] = {
    "afr": "af", "amh": "am", "arb": "ar", "azj": "az", "bel": "be", "ben": "bn", "bul": "bg",
    "cat": "ca", "ces": "cs", "cym": "cy", "dan": "da", "deu": "de", "ell": "el", "eng": "en",
    "est": "et", "eus": "eu", "fin": "fi", "fra": "fr", "gle": "ga", "glg": "gl", "guj": "gu",
    "hau": "ha", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "hye": "hy", "ind": "id",
    "isl": "is", "ita": "it", "jpn": "ja", "kat": "ka", "kaz": "kk", "khm": "km", "kor": "ko",
    "lit": "lt", "lvs": "lv", "mal": "ml", "mar": "mr", "mkd": "mk", "mya": "my", "nld": "nl",
    "nob": "nb", "npi": "ne", "pes": "fa", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru",
    "slk": "sk", "slv": "sl", "spa": "es", "srp": "sr", "swe": "sv", "swh": "sw", "tam": "ta",
    "tel": "te", "tgl": "tl", "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur", "uzn": "uz",
    "vie": "vi", "yue": "yue", "zho": "zh", "zsm": "ms", "zul": "zu",
}  # fmt: skip
# Labels that also count as the language: detectors name some close varieties differently
# (Norwegian as "no", Serbo-Croatian as "sh", Cantonese as Chinese, Chinese as Wu).
_ALSO: dict[str, tuple[str, ...]] = {
    "nb": ("no", "nn"), "hr": ("sh", "bs", "sr"), "sr": ("sh", "bs", "hr"), "yue": ("zh",), "zh": ("wuu",), "ms": ("id",),
}  # fmt: skip


def detector_labels(code: str) -> frozenset[str]:
    """Labels a language detector may give text in language `code` (a FLORES code, an ISO 639-1/3
    code, or a user's own code for a constructed language, which matches only itself).

    >>> sorted(detector_labels("zho_Hans")), sorted(detector_labels("xsy_Latn"))
    (['wuu', 'zh', 'zho', 'zho_hans'], ['xsy', 'xsy_latn'])
    """
    code = str(code).strip()
    base = code.split("_", 1)[0].lower()
    iso1 = _FLORES_ISO1.get(base, base)
    return frozenset({code.lower(), base, iso1, *_ALSO.get(iso1, ())})
