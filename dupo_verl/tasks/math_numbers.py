"""Find the numbers of a math problem and decide which ones a dual question may hide.

The paper masks one number per dual question and excludes subscripts (`x_1`), numbers inside
inequality constraints (`x \\le 5`), common exponential bases (`2^n`) and function arguments
(`f(3)`). We also leave alone numbers inside LaTeX names (`\\begin{..}`, `\\label{..}`, spacing),
exponents of units (`cm^2`), Asymptote figure code, numbers glued to a word (`3x`, `1st`, `x2`:
a variable name there would read as a product), and numbers whose replacement by a name breaks the
LaTeX (`x^2`, `\\frac12`, `\\cdot3`, repeating decimals). Replacing a maskable number by a name
changes the text at that number only.

Recognised number forms: integers, decimals (`3.5`, `.5`), thousands separators (`1,450,000`,
`1{,}000`, `24,\\!000`, and the SI space of `$400 000` as GSM8K writes it, so that `000` is never
hidden alone; a group that runs into a word is not one: `3 100-page books` is two numbers), a unary
minus (`-48`, `x = -3`), percentages (`25%`, `25\\%`: the `%` stays in the text) and numbers inside
`$...$` or `\\frac{3}{4}` arguments.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Exclusion reasons, most specific first: a number touching several regions gets the first.
REASONS: tuple[str, ...] = (
    "asy_code",
    "latex_name",
    "function_argument",
    "subscript",
    "inequality",
    "unit_exponent",
    "exponent_base",
    "latex_break",
    "attached_to_word",
)
_RANK = {reason: i for i, reason in enumerate(REASONS)}


class NumberSpan(NamedTuple):
    """One number of the text: `text[start:end]` (sign included), its value, and why it may not be
    hidden (`excluded`, None when it may)."""

    start: int
    end: int
    value: str
    excluded: str | None = None


_NUMBER = re.compile(
    r"(?P<grouped>[1-9]\d{0,2}(?:(?:\{,\}|,\\!|,)\d{3}(?![\d]))+(?:\.\d+)?"
    r"|[1-9]\d{0,2}(?:[ \u00a0\u2009\u202f]\d{3}(?![\w\-]))+(?:\.\d+)?)"
    r"|(?P<plain>\d+(?:\.\d+)?|(?<!\d)\.\d+)"
)
_PLAIN = re.compile(r"\d+(?:\.\d+)?")
_DIGIT = re.compile(r"\d")
_SEPARATOR = re.compile(r"\{,\}|,\\!|,|[ \u00a0\u2009\u202f]")

_ASY = re.compile(r"\[asy\].*?(?:\[/asy\]|\Z)", re.S)
_LATEX_NAME = re.compile(
    r"\\begin\s*\{(?:array|tabular\*?|subarray)\}(?:\s*\[[^\]]*\])?\s*\{[^{}]*\}"
    r"|\\(?:begin|end)\s*\{[^{}]*\}"
    r"|\\(?:label|ref|eqref|tag|hspace\*?|vspace\*?|color|textcolor|colorbox|pagecolor|setlength"
    r"|includegraphics|url|href|cite|unitlength)\s*(?:\[[^\]]*\])?\s*\{[^{}]*\}"
    r"|\\rule\s*(?:\[[^\]]*\])?\s*\{[^{}]*\}\s*\{[^{}]*\}"
    r"|\\\\\s*\[[^\]]*\]"
    r"|\\(?:kern|mkern|hskip|vskip|mskip|hspace|vspace)\s*-?\d*\.?\d+\s*(?:pt|mu|em|ex|mm|cm|in|bp|pc|sp)"
)
# A function call's head, ending right before its "(": a function-like letter or a named operator,
# optional sub/superscript or primes (`f(3)`, `f^{-1}(6)`, `\sin (x)`, `gcd(4, 6)`).
_SCRIPT = r"(?:_\{[^{}]*\}|_[A-Za-z0-9])?(?:\^\{[^{}]*\}|\^[A-Za-z0-9]|'+)?"
_FUNC_OPS = (
    "sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|sinh|cosh|tanh|log|ln|lg|exp|gcd|lcm|det|max|min|deg|arg|Pr"
)
_CALL_HEAD = re.compile(
    r"(?:(?<![A-Za-z\\])[fghpqrsuvwFGHPQRST]"
    + _SCRIPT
    + r"|(?<![A-Za-z\\])(?:gcd|lcm|sin|cos|tan|log|ln|max|min)"
    + _SCRIPT
    + r"|\\(?:"
    + _FUNC_OPS
    + r")(?![A-Za-z])"
    + _SCRIPT
    + r"\s*"
    + r"|\\operatorname\*?\s*\{[^{}]*\}"
    + _SCRIPT
    + r"\s*"
    + r"|\\(?:text|mathrm|textrm|mathit|rm)\s*\{\s*[A-Za-z]+\s*\}"
    + _SCRIPT
    + r"\s*)"
    + r"(?:(?:\\left|\\bigl|\\Bigl|\\big|\\Big)\s*)?$"
)
# `\sin 30^\circ`, `\log_2 8`: a named operator applied without parentheses.
_FUNC_OP = re.compile(r"\\(?:" + _FUNC_OPS + r")(?![A-Za-z])")
_BARE_ARG = re.compile(_SCRIPT + r"\s*(?P<arg>\{[^{}]*\}|-?\d+(?:\.\d+)?)")
_INEQUALITY = re.compile(
    r"<|>|≤|≥|≠|⩽|⩾|\\(?:le|leq|leqslant|ge|geq|geqslant|lt|gt|ne|neq|ll|gg|nless|ngtr|nleq|ngeq)(?![A-Za-z])"
)
# Where one constraint ends and the next part of the problem begins.
_CLAUSE_BREAK = re.compile(
    r"\$|\\\[|\\\]|\\\(|\\\)|\n|;|\?|&|\\\\|\\q?quad(?![A-Za-z])"
    r"|,(?!\d)|(?<!\d),|\.(?=\s|$|\$)"
    r"|\\(?:text\w*|mbox|mathrm)\s*\{[^{}]*\}"
    r"|(?<![A-Za-z\\])(?:and|or|if|where|for|with|then|but|when|which|that|so)(?![A-Za-z])"
)
_UNIT_POWER = re.compile(
    r"(?:\\(?:text|mbox|mathrm|textrm|rm)\s*\{[^{}]*\}"
    r"|(?<![A-Za-z\\])(?:cm|mm|km|dm|ft|yd|mi|in|inches|feet|meters?|units?)(?![A-Za-z]))"
    r"\s*\^\s*(?P<exp>\{[^{}]*\}|\d)"
)
_POWER_AFTER = re.compile(r"\s*\^\s*(?:\{|(?P<single>\\[A-Za-z]+|[A-Za-z0-9]))")
_NOT_A_POWER = re.compile(r"^\s*(?:\\circ|\\prime|\\text\w*\s*\{.*\}|\\mathrm\s*\{.*\}|th|st|nd|rd)\s*$")
_LAYOUT_COMMANDS = re.compile(r"\\(?:d|t|c)?frac|\\sqrt|\\left|\\right|\\cdot|\\times")
_CONTROL_WORD_BEFORE = re.compile(r"\\[A-Za-z]+$")
_ARG_COMMAND_BEFORE = re.compile(
    r"\\(?:(?:d|t|c)?frac|sqrt|(?:d|t)?binom|overline|underline|hat|bar|vec|widehat|textbf|mathbf|boxed)\s*$"
)
_SECOND_ARG_BEFORE = re.compile(r"\\(?:(?:d|t|c)?frac|(?:d|t)?binom)\s*\{[^{}]*\}\s*$")
_REPEATING = re.compile(r"\d*\.\s*\\overline\s*\{[^{}]*\}")
_OPERATOR_CHARS = set("([{=,;:<>$&|+*/~")
# Control words after which a minus is a sign.
_SIGN_AFTER = frozenset(
    "le leq ge geq lt gt ne neq cdot times div pm mp approx equiv sim to in quad qquad colon mid "
    "Rightarrow implies iff left".split()
)


def _matching(text: str, open_index: int, opener: str, closer: str, limit: int = 2000) -> int:
    """Index of the bracket closing the one at `open_index` (or the end of text when unbalanced)."""
    depth = 0
    stop = min(len(text), open_index + limit)
    for i in range(open_index, stop):
        ch = text[i]
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return i
    return stop


def _script_regions(text: str) -> list[tuple[int, int]]:
    """Spans of subscripts: `_1`, `_{12}`, `_{n+1}`."""
    spans = []
    for m in re.finditer(r"_\s*", text):
        i = m.end()
        if i >= len(text):
            break
        if text[i] == "{":
            spans.append((i, _matching(text, i, "{", "}") + 1))
        else:
            spans.append((i, i + 1))
    return spans


def _call_regions(text: str) -> list[tuple[int, int]]:
    spans = []
    i = text.find("(")
    while i >= 0:
        head = _CALL_HEAD.search(text, max(0, i - 64), i)
        if head is not None:  # the head too: `f^{-1}(6)`, `f_2(3)` name the function
            spans.append((head.start(), _matching(text, i, "(", ")")))
        i = text.find("(", i + 1)
    if "\\" in text:
        for m in _FUNC_OP.finditer(text):
            arg = _BARE_ARG.match(text, m.end())
            if arg is not None:
                spans.append((arg.start("arg"), arg.end("arg")))
    return spans


def _clause_regions(text: str) -> list[tuple[int, int]]:
    """Spans of clauses holding an inequality sign: every number in them is part of a constraint."""
    spans = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(text):
        if _INEQUALITY.search(text, start, m.start()):
            spans.append((start, m.start()))
        start = m.end()
    if _INEQUALITY.search(text, start):
        spans.append((start, len(text)))
    return spans


def _regions(text: str) -> list[tuple[int, int, str]]:
    """Every excluded region of the text with its reason."""
    regions: list[tuple[int, int, str]] = []
    if "[asy]" in text:
        regions += [(m.start(), m.end(), "asy_code") for m in _ASY.finditer(text)]
    if "\\" in text:
        regions += [(m.start(), m.end(), "latex_name") for m in _LATEX_NAME.finditer(text)]
        if "\\overline" in text:
            regions += [(m.start(), m.end(), "latex_break") for m in _REPEATING.finditer(text)]
    if "(" in text or "\\" in text:
        regions += [(s, e, "function_argument") for s, e in _call_regions(text)]
    if "_" in text:
        regions += [(s, e, "subscript") for s, e in _script_regions(text)]
    if _INEQUALITY.search(text):
        regions += [(s, e, "inequality") for s, e in _clause_regions(text)]
    if "^" in text:
        regions += [(m.start("exp"), m.end("exp"), "unit_exponent") for m in _UNIT_POWER.finditer(text)]
    return regions


def _is_unary_minus(text: str, minus: int) -> bool:
    """Whether the `-` at `minus` is a sign (`-48`, `x = -3`, `is -5`) rather than a subtraction."""
    k = minus - 1
    while k >= 0 and text[k] in " \t":
        k -= 1
    if k < 0:
        return True
    prev = text[k]
    spaced = k < minus - 1
    if prev in _OPERATOR_CHARS or prev == "\n":
        return True
    word = _CONTROL_WORD_BEFORE.search(text, max(0, k - 20), k + 1)
    if word is not None:
        return word.group(0)[1:] in _SIGN_AFTER  # `\le -3`, `\cdot -2`, but `\pi - 3` subtracts
    return spaced and prev.isalpha()


def _power_is_symbolic(text: str, end: int) -> bool:
    """Whether the number ending at `end` is the base of a power with a symbolic exponent (`2^n`)."""
    m = _POWER_AFTER.match(text, end)
    if m is None:
        return False
    if m.group("single") is not None:
        exponent = m.group("single")
    else:
        brace = m.end() - 1
        exponent = text[brace + 1 : _matching(text, brace, "{", "}")]
    if _NOT_A_POWER.match(exponent):
        return False
    return re.search(r"[A-Za-z]", _LAYOUT_COMMANDS.sub("", exponent)) is not None


def _local_reason(text: str, start: int, end: int) -> str | None:
    """Reasons visible from the number's immediate neighbours (cheap checks first)."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if "^" in text[end : end + 4] and _power_is_symbolic(text, end):
        return "exponent_base"
    head = text[max(0, start - 60) : start].rstrip()
    if head.endswith("^"):
        return "latex_break"  # an unbraced exponent takes one character: `x^2`
    if "\\" in head:
        if before.isalpha() and _CONTROL_WORD_BEFORE.search(head):
            return "latex_break"  # `\cdot3`, `\frac12`
        if (head[-1:].isalpha() and _ARG_COMMAND_BEFORE.search(head)) or (
            head.endswith("}") and _SECOND_ARG_BEFORE.search(head)
        ):
            return "latex_break"  # `\frac 12`, `\frac{1}2`
    if before.isalpha() or after.isalpha():
        return "attached_to_word"
    return None


def _list_context(text: str, start: int) -> bool:
    """Whether a number starts a tuple or interval (`(1,000)` is then two numbers, not one)."""
    k = start - 1
    while k >= 0 and text[k] in " -":
        k -= 1
    if k < 0:
        return False
    if text[k] == ",":  # a list of numbers: `2, 1,000` (but not `each, 1,000`)
        j = k - 1
        while j >= 0 and text[j] == " ":
            j -= 1
        return j >= 0 and text[j].isdigit()
    return text[k] in "([" or text.endswith("\\{", 0, k + 1)


def scan_numbers(text: str) -> list[NumberSpan]:
    """All numbers of `text` in order, each with its exclusion reason (None: may be hidden)."""
    if not _DIGIT.search(text):
        return []
    regions = sorted(_regions(text))
    next_region, active = 0, []
    spans: list[NumberSpan] = []
    pos = 0
    while True:
        m = _NUMBER.search(text, pos)
        if m is None:
            break
        start, end = m.span()
        if m.group("grouped") is not None and "," in m.group(0) and _list_context(text, start):
            end = _PLAIN.match(text, start).end()
        digits = text[start:end]
        pos = end
        if start > 0 and text[start - 1] == "." and digits[0] != ".":
            continue  # tail of `1.2.3` style text
        value = _SEPARATOR.sub("", digits)
        if value.startswith("."):
            value = "0" + value
        digits_start = start
        if start > 0 and text[start - 1] in "-−" and _is_unary_minus(text, start - 1):
            start -= 1
            value = "-" + value
        while next_region < len(regions) and regions[next_region][0] < end:
            active.append(regions[next_region])
            next_region += 1
        active = [r for r in active if r[1] > start]  # numbers come in order: passed regions go
        reason = None
        for _, _, r_reason in active:
            if reason is None or _RANK[r_reason] < _RANK[reason]:
                reason = r_reason
        if reason is None or _RANK[reason] > _RANK["exponent_base"]:
            local = _local_reason(text, digits_start, end)
            if local is not None and (reason is None or _RANK[local] < _RANK[reason]):
                reason = local
        spans.append(NumberSpan(start, end, value, reason))
    return spans


def maskable_numbers(text: str) -> list[NumberSpan]:
    """The numbers a dual question may hide."""
    return [span for span in scan_numbers(text) if span.excluded is None]
