r"""Exact parsing and comparison of plain numbers: the fast path that decides most GSM8K and MATH answers.

Numbers are read into ``fractions.Fraction`` so integers, fractions and mixed numbers compare *exactly*
(``1/2004!``-style near-equalities can never be rounded together).  A written decimal remembers how many digits
it was given with.

**An approximation of an exact value is wrong** (docs/grading.md): a decimal equals an exact gold only when it *is*
that value, written out (``0.375`` = 3/8) or as a repeating decimal (``0.\overline{3}``, ``0.1\overline{6}``,
``0.(3)``).  Rounding is accepted only when the gold itself is a decimal (the prediction must round to it at the
gold's precision) or when the problem asks for a decimal or a rounding (:func:`rounding_request`); ``lenient``
restores the old rule (any correctly rounded decimal with 3+ significant digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 400  # longer digit strings are left to the bounded symbolic path
MAX_EXPONENT = 400  # |e| in 1.2e{e} / 10^{e}; larger powers are not "plain numbers"
MIN_SIGNIFICANT = 3  # a rounded decimal must carry at least this many significant digits to match an exact value

_DEC = r"(?:\d+(?:\.\d*)?|\.\d+)"
_INT = r"\d+"
_RE_DEC = re.compile(rf"^([+-]?)({_DEC})$")
_RE_SCI = re.compile(rf"^([+-]?)({_DEC})(?:[eE]([+-]?\d+)|(?:\\times|\\cdot|\*|×)10\^(?:\{{([+-]?\d+)\}}|(\d)))$")
_RE_POW10 = re.compile(r"^([+-]?)10\^(?:\{([+-]?\d+)\}|(\d))$")
_RE_FRAC = re.compile(rf"^([+-]?)\\frac\{{([+-]?)({_DEC})\}}\{{([+-]?)({_DEC})\}}$")
_RE_SLASH = re.compile(rf"^([+-]?)\(?({_DEC})\)?/\(?([+-]?)({_DEC})\)?$")
_RE_MIXED = re.compile(rf"^([+-]?)({_INT})\\frac\{{({_INT})\}}\{{({_INT})\}}$")
_RE_REPEAT = re.compile(r"^([+-]?)(\d*)\.(\d*)(?:\\overline\{(\d+)\}|\\dot\{?(\d)\}?|\((\d+)\))$")


@dataclass(frozen=True)
class Number:
    """A parsed number.  ``decimals`` is None for exact values (integers, fractions), else the written precision."""

    value: Fraction
    decimals: int | None = None
    significant: int = 0

    @property
    def exact(self) -> bool:
        return self.decimals is None


@dataclass(frozen=True)
class Rules:
    """What the problem allows: ``rounding`` (the question asks for a decimal or a rounding; ``decimals`` the
    precision it names, if any: 1 for "nearest tenth", 0 for "nearest whole number", -1 for "nearest ten"), and
    ``lenient`` (the old rule: any correctly rounded decimal with 3+ significant digits)."""

    rounding: bool = False
    decimals: int | None = None
    lenient: bool = False
    significant: int | None = None  # "to 2 significant figures": the precision is in significant digits

    @property
    def approximations_ok(self) -> bool:
        return self.rounding or self.lenient


STRICT = Rules()
_PLACES = {
    "tenth": 1,
    "tenths": 1,
    "hundredth": 2,
    "hundredths": 2,
    "thousandth": 3,
    "thousandths": 3,
    "ten-thousandth": 4,
    "ten thousandth": 4,
    "cent": 2,
    "whole number": 0,
    "integer": 0,
    "dollar": 0,
    "percent": 0,
    "degree": 0,
    "unit": 0,
    "whole": 0,
    "foot": 0,
    "inch": 0,
    "meter": 0,
    "mile": 0,
    "second": 0,
    "minute": 0,
    "ten": -1,
    "hundred": -2,
    "thousand": -3,
}
_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_NEAREST = re.compile(
    r"nearest\s+(ten[- ]thousandths?|tenths?|hundredths?|thousandths?|cent|whole number|integer|"
    r"dollar|percent|degree|unit|whole|foot|inch|meter|mile|second|minute|thousand|hundred|ten)\b",
    re.I,
)
_SIGFIGS_RE = re.compile(
    r"\b(\d|one|two|three|four|five|six)\s+sig(?:nificant|\.)?\s*(?:figures?|digits?|figs?)\b", re.I
)
_PLACES_RE = re.compile(r"\b(\d|one|two|three|four|five|six)\s+decimal\s+(?:places?|digits?)", re.I)
_DECIMAL_ASK = re.compile(
    r"\bas\s+a\s+decimal|\bdecimal\s+(?:form|notation|answer|approximation)|\bin\s+decimal|\bround(?:ed|ing)?\b|"
    r"\bapproximate(?:ly)?\b|\bestimate\b|\bto\s+the\s+nearest\b|\bdecimal\s+places?\b|\bsignificant\s+(?:figures|digits)",
    re.I,
)


def rounding_request(question: str | None) -> Rules:
    """Does the problem ask for a decimal or a rounding, and to what precision?"""
    if not question:
        return STRICT
    m = _NEAREST.search(question)
    if m:
        key = m.group(1).lower()
        return Rules(True, _PLACES[key if key in _PLACES else key.rstrip("s")])
    m = _SIGFIGS_RE.search(question)
    if m:
        n = m.group(1).lower()
        return Rules(True, None, significant=int(n) if n.isdigit() else _NUM_WORDS[n])
    m = _PLACES_RE.search(question)
    if m:
        n = m.group(1).lower()
        return Rules(True, int(n) if n.isdigit() else _NUM_WORDS[n])
    if _DECIMAL_ASK.search(question):
        return Rules(True, None)
    return STRICT


def _decimal(text: str) -> tuple[Fraction, int | None, int]:
    """Parse an unsigned decimal literal; report decimals (None if written as an integer) and significant digits."""
    if "." not in text:
        return Fraction(int(text)), None, len(text.lstrip("0")) or 1
    whole, frac = text.split(".", 1)
    digits = (whole + frac).lstrip("0")
    value = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    return value, len(frac), len(digits) or 1


def _signed(sign: str, value: Fraction) -> Fraction:
    return -value if sign == "-" else value


def repeating(whole: str, fixed: str, period: str) -> Fraction:
    """``whole.fixed(period)(period)...`` exactly: 0.1(6) = 1/6."""
    base = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    return base + Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))


def parse_number(text: str) -> Number | None:
    """Read ``text`` (already normalised) as a plain real number, or return None.

    Accepts integers, decimals, repeating decimals (``0.\\overline{3}``, ``0.(3)``), scientific notation (``1.5e3``,
    ``1.5\\times10^{3}``), ``\\frac{a}{b}``, ``a/b`` and mixed numbers (``2\\frac{1}{2}``).  Anything else (surds,
    pi, variables) is not a plain number.
    """
    s = text.replace(" ", "")
    if not s or len(s) > MAX_DIGITS or not any(c.isdigit() for c in s):
        return None
    if m := _RE_DEC.match(s):
        value, decimals, sig = _decimal(m.group(2))
        return Number(_signed(m.group(1), value), decimals, sig)
    if m := _RE_REPEAT.match(s):
        period = m.group(4) or m.group(5) or m.group(6)
        return Number(_signed(m.group(1), repeating(m.group(2), m.group(3), period)))
    if m := _RE_SCI.match(s):
        exp = int(m.group(3) or m.group(4) or m.group(5))
        if abs(exp) > MAX_EXPONENT:
            return None
        value, decimals, sig = _decimal(m.group(2))
        value *= Fraction(10) ** exp
        # 1.5e3 is a decimal with 1 written decimal shifted by 3: precision is in significant digits.
        dec = None if decimals is None and exp >= 0 else (decimals or 0) - exp
        return Number(_signed(m.group(1), value), dec, sig)
    if m := _RE_POW10.match(s):
        exp = int(m.group(2) or m.group(3))
        if abs(exp) > MAX_EXPONENT:
            return None
        return Number(_signed(m.group(1), Fraction(10) ** exp), None, 1)
    if m := _RE_MIXED.match(s):
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if den == 0:
            return None
        return Number(_signed(m.group(1), whole + Fraction(num, den)))
    for rx in (_RE_FRAC, _RE_SLASH):
        if m := rx.match(s):
            groups = m.groups()
            if rx is _RE_FRAC:
                sign, nsign, num, dsign, den = groups
            else:
                sign, num, dsign, den = groups
                nsign = ""
            n, nd, _ = _decimal(num)
            d, dd, _ = _decimal(den)
            if d == 0:
                return None
            value = _signed(sign, _signed(nsign, n) / _signed(dsign, d))
            # A fraction of decimals (1.5/2) is as precise as its least precise part; keep it exact if both are.
            dec = None if nd is None and dd is None else max(nd or 0, dd or 0)
            return Number(value, dec, 0 if dec is None else MIN_SIGNIFICANT)
    return None


def round_to(value: Fraction, decimals: int) -> Fraction:
    """``value`` rounded half away from zero to ``decimals`` places (negative: tens, hundreds, ...)."""
    q = Fraction(10) ** decimals
    scaled = abs(value) * q
    r = int(scaled) + (1 if scaled - int(scaled) >= Fraction(1, 2) else 0)
    return (Fraction(r) / q) * (1 if value >= 0 else -1)


def _rounds_to(exact: Fraction, rounded: Fraction, decimals: int) -> bool:
    """Is ``rounded`` equal to ``exact`` rounded half-up/half-down to ``decimals`` places?"""
    return abs(exact - rounded) * 2 <= Fraction(10) ** (-decimals)


def numbers_equal(pred: Number, gold: Number, rules: Rules = STRICT) -> tuple[bool, str]:
    """Exact for exact values; a rounded decimal only where the gold or the problem allows rounding.

    - equal values: equal (``1/2`` == ``0.5``, since 0.5 is exactly 1/2).
    - the gold is a decimal (already rounded): the prediction, rounded to the gold's precision, must equal it,
      and must be given with at least that precision (or exactly).
    - the gold is exact and the problem asks for a rounding to a named precision: the prediction must be the gold
      rounded there (or correctly rounded at a finer precision it was written with).
    - the gold is exact, the problem asks for a decimal (or ``lenient``): a correctly rounded decimal with at least
      ``MIN_SIGNIFICANT`` significant digits (``0.333`` for 1/3; never ``0.33``).
    - otherwise a decimal that is not exactly the gold is an approximation, and wrong.
    """
    if pred.value == gold.value:
        return True, f"numeric: {_fmt(pred.value)} == {_fmt(gold.value)}"
    if rules.significant and not rules.lenient:
        return at_significant(pred, gold, rules.significant)
    if not gold.exact:
        assert gold.decimals is not None
        if (pred.exact or (pred.decimals or 0) >= gold.decimals) and _rounds_to(pred.value, gold.value, gold.decimals):
            return True, f"numeric: prediction rounds to the gold's {gold.decimals} decimals"
        return False, f"numeric: {_fmt(pred.value)} != {_fmt(gold.value)}"
    if rules.rounding and rules.decimals is not None:
        if pred.value == round_to(gold.value, rules.decimals):
            return True, f"numeric: the gold rounded to {rules.decimals} decimals, as the problem asks"
        if (
            pred.decimals is not None
            and pred.decimals > rules.decimals
            and _rounds_to(gold.value, pred.value, pred.decimals)
        ):
            return True, f"numeric: the gold correctly rounded to {pred.decimals} decimals (finer than asked)"
        return False, f"numeric: {_fmt(pred.value)} is not the gold rounded to {rules.decimals} decimals"
    if not pred.exact and pred.decimals is not None:
        if not rules.approximations_ok:
            return False, f"numeric: {_fmt(pred.value)} approximates the exact gold {_fmt(gold.value)}"
        if pred.significant >= MIN_SIGNIFICANT and _rounds_to(gold.value, pred.value, pred.decimals):
            return True, f"numeric: prediction is the exact gold rounded to {pred.decimals} decimals"
        return False, f"numeric: {_fmt(pred.value)} is not the exact gold {_fmt(gold.value)} correctly rounded"
    return False, f"numeric: {_fmt(pred.value)} != {_fmt(gold.value)}"


def round_significant(value: Fraction, digits: int) -> Fraction:
    """``value`` rounded half away from zero to ``digits`` significant digits."""
    if value == 0:
        return value
    a, exp = abs(value), 0
    while a >= 10:
        a, exp = a / 10, exp + 1
    while a < 1:
        a, exp = a * 10, exp - 1
    return round_to(value, digits - 1 - exp)


def at_significant(pred: Number, gold: Number, digits: int) -> tuple[bool, str]:
    """The problem asks for ``digits`` significant figures (Minerva's measured values): both sides rounded there
    must agree, and the prediction must be written with at least that many (an exact prediction counts as exact)."""
    asked = f"at the {digits} significant figure{'s' if digits > 1 else ''} the problem asks for"
    if not pred.exact and pred.significant < digits and pred.value != round_significant(gold.value, pred.significant):
        return False, f"numeric: {_fmt(pred.value)} has fewer significant figures than the {digits} asked for"
    a, b = round_significant(pred.value, digits), round_significant(gold.value, digits)
    return a == b, f"numeric: {'equal' if a == b else 'differ'} {asked} ({_fmt(a)} vs {_fmt(b)})"


def _fmt(v: Fraction) -> str:
    s = str(v)
    return s if len(s) <= 40 else s[:18] + "…" + s[-18:]
