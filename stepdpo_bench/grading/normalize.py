"""Textual normalisation of final answers.

Everything here is plain string work (regexes over bounded input): it is the fast path that decides most
comparisons without sympy, and the canonical form that the structural parser and the symbolic layer start from.
Both the prediction and the gold answer go through the same function, so a rule never favours one side.
"""

from __future__ import annotations

import re

# Units and filler words that may follow a numeric answer.  Only whole words from this list are dropped, so a
# trailing variable (``4t``) is never mistaken for a unit.
UNIT_WORDS = (
    "square units|sq units|cubic units|units?|square feet|square inches|square meters|square centimeters|"
    "square miles|square yards|cubic feet|cubic inches|cubic meters|cubic centimeters|"
    "centimeters?|centimetres?|millimeters?|kilometers?|meters?|metres?|inch(?:es)?|feet|foot|ft|yards?|"
    "miles?|cm|mm|km|m|"
    "degrees?|radians?|dollars?|cents?|percent|"
    "seconds?|minutes?|hours?|days?|weeks?|months?|years?|mph|"
    "pounds?|ounces?|grams?|kilograms?|kg|g|lbs?|gallons?|liters?|litres?|"
    "points?|people|persons?|students?|ways|times|cookies|apples|marbles|books|pages|"
    "sq\\.? ?ft"
)
_UNIT_TAIL = re.compile(rf"^(.*?[\d}}a-zA-Z)])\s+(?:{UNIT_WORDS})(?:\^\{{?[23]\}}?)?\s*\}}?(\^\{{?[23]\}}?)?$")
_UNIT_TEXT = re.compile(rf"\\(?:text|mbox|textrm|mathrm)\{{\s*(?:{UNIT_WORDS})\s*\}}(\^\{{?[23]\}}?)?")

_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad(?![a-zA-Z])|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d|\\?[a-zA-Z])\s*(\d|\\?[a-zA-Z])")
_FRAC_HALF = re.compile(r"\\frac\s*(\d|[a-zA-Z])\s*(\{)")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d|[a-zA-Z])")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d|[a-zA-Z])")
_TEXT_WRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|boldsymbol|operatorname)\s*\{([^{}]*)\}"
)
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_LIST_WORDS = re.compile(r"\s+(?:and|or)\s+|\s*\\(?:text|mbox)\{\s*(?:and|or)\s*\}\s*")
_WS = re.compile(r"\s+")
_SPACE_NOT_BETWEEN_LETTERS = re.compile(r"(?<![A-Za-z])\s|\s(?![A-Za-z])")


def strip_delimiters(s: str) -> str:
    """Remove surrounding math-mode delimiters, whitespace and end-of-sentence punctuation."""
    prev = None
    s = s.strip()
    while s != prev:
        prev = s
        s = s.strip().rstrip(".").rstrip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
        if s.startswith("\\displaystyle"):
            s = s[len("\\displaystyle") :]
    return s


def normalize(s: str) -> str:
    """Canonical text form of an answer: same for every reasonable way of writing the same thing.

    Deliberately conservative: it drops presentation (spacing commands, ``\\left``, ``\\dfrac``, degrees, percent and
    dollar signs, known units, thousands separators) but never content, so near-misses stay distinguishable.
    """
    s = strip_delimiters(s)
    s = s.replace("\\displaystyle", "").replace("\\$", "").replace("$", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING.sub(" ", s)
    s = _LEFT_RIGHT.sub("", s)
    s = s.replace("\\{", "\x00LB").replace("\\}", "\x00RB")  # protect set braces from brace-oriented rules
    s = _UNIT_TEXT.sub("", s)
    # Unwrap \text{...}-style wrappers (inner-most first, bounded by the input length).
    for _ in range(8):
        new = _TEXT_WRAP.sub(r"\1", s)
        if new == s:
            break
        s = new
    s = _LIST_WORDS.sub(",", s)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace("\\cdot", "\\cdot ")
    s = s.replace("{,}", ",")
    s = s.replace("\x00LB", "\\{").replace("\x00RB", "\\}")
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}\2", s)
    s = _FRAC_HALF2.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = _WS.sub(" ", s).strip()
    m = _UNIT_TAIL.match(s)
    if m and m.group(1).strip():
        s = m.group(1).strip()
    s = _SPACE_NOT_BETWEEN_LETTERS.sub("", s)
    s = strip_delimiters(s).rstrip(",;")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    return s


_CHOICE = re.compile(r"^\(?\s*([A-F])\s*\)?$")


def choice_letters(s: str) -> str | None:
    """``(C)``, ``\\text{(C)}``, ``C``, ``$C$``, ``C)`` -> ``"C"``; ``B, F``-style lists -> ``"BF"`` (sorted).

    Returns None when the text is not a multiple-choice answer.
    """
    t = normalize(s)
    m = _CHOICE.match(t)
    if m:
        return m.group(1).upper()
    t2 = t.replace(" ", "")
    if re.fullmatch(r"\(?[A-F]\)?(?:(?:,|and|&)\(?[A-F]\)?)+", t2):
        return "".join(sorted(set(re.findall(r"[A-F]", t2))))
    return None
