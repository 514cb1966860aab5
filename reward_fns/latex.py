"""TeX's own reading of unbraced macro arguments, applied before an answer is parsed.

TeX takes one token per macro argument: one character, one control sequence or one braced group,
after skipping spaces. So ``\\frac123`` is ``\\frac{1}{2}3`` (one half, then a 3: 3/2), exactly
what the MATH benchmark's grader (``_fix_fracs``) and Minerva's normaliser rewrite it to, and
``\\frac\\pi2`` is ``\\frac{\\pi}{2}``. math-verify's LaTeX parser reads ``\\frac123`` as 1/23 and
``\\frac\\pi2`` as garbage, and ``\\frac{9}{3}6`` (a fraction times a digit) as 9; so arguments are
braced and a digit right after the last one gets an explicit ``\\cdot``. Only the macros below are
rewritten; ``10^12`` is left alone (people mean 10^{12} there, whatever TeX says).
"""

from __future__ import annotations

import re

__all__ = ["normalize_tex_arguments"]

MACRO_ARGUMENTS = {"frac": 2, "dfrac": 2, "tfrac": 2, "cfrac": 2, "binom": 2, "dbinom": 2, "tbinom": 2, "sqrt": 1}
_MACRO = re.compile(r"\\(" + "|".join(sorted(MACRO_ARGUMENTS, key=len, reverse=True)) + r")(?![A-Za-z])")
_CONTROL_SEQUENCE = re.compile(r"\\(?:[A-Za-z]+|.)", re.S)


def normalize_tex_arguments(text: str) -> str:
    """``text`` with every unbraced argument of a fraction, binomial or root put in braces, and
    ``\\\\cdot`` between such a macro and a digit that follows it.

    Linear in the length of ``text``; text TeX would reject (a missing argument) is left as is.

    >>> normalize_tex_arguments("\\\\frac123"), normalize_tex_arguments("\\\\sqrt[3]8 + \\\\dfrac\\\\pi 2")
    ('\\\\frac{1}{2}\\\\cdot 3', '\\\\sqrt[3]{8} + \\\\dfrac{\\\\pi} {2}')
    """
    if "\\" not in text:
        return text
    closing = _matching_braces(text)
    inserts: list[tuple[int, int, str]] = []  # (position, order at that position: close, cdot, open; text)
    for m in _MACRO.finditer(text):
        pos = m.end()
        arguments = MACRO_ARGUMENTS[m.group(1)]
        for index in range(arguments):
            pos = _skip_spaces(text, pos)
            if index == 0 and m.group(1) == "sqrt" and text.startswith("[", pos):
                end = text.find("]", pos)
                if end < 0:
                    break
                pos = _skip_spaces(text, end + 1)
            if pos >= len(text) or text[pos] == "}":
                break
            if text[pos] == "{":
                end = closing.get(pos)
                if end is None:
                    break
                pos = end + 1
                continue
            token = _CONTROL_SEQUENCE.match(text, pos)
            if token is not None and _MACRO.match(text, pos):
                break  # "\frac\frac12..." is a TeX error; leave it to the parser
            end = token.end() if token is not None else pos + 1
            inserts += [(pos, 2, "{"), (end, 0, "}")]
            pos = end
        else:  # every argument found: a digit right after them multiplies
            after = _skip_spaces(text, pos)
            if after < len(text) and text[after].isdigit():
                inserts.append((after, 1, "\\cdot "))
    if not inserts:
        return text
    inserts.sort(key=lambda item: (item[0], item[1]))
    out, last = [], 0
    for pos, _, brace in inserts:
        out.append(text[last:pos])
        out.append(brace)
        last = pos
    out.append(text[last:])
    return "".join(out)


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _matching_braces(text: str) -> dict[int, int]:
    """Index of each ``{`` to the index of its ``}`` (escaped braces ``\\{`` are not groups)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs
