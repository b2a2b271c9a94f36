"""Exact parsing and comparison of plain numbers: the fast path that decides most GSM8K and MATH answers.

Numbers are read into ``fractions.Fraction`` so integers, fractions and mixed numbers compare *exactly*
(``1/2004!``-style near-equalities can never be rounded together).  A written decimal remembers how many digits
it was given with: tolerance applies only to decimals, and only as "one side is the other correctly rounded".
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


@dataclass(frozen=True)
class Number:
    """A parsed number.  ``decimals`` is None for exact values (integers, fractions), else the written precision."""

    value: Fraction
    decimals: int | None = None
    significant: int = 0

    @property
    def exact(self) -> bool:
        return self.decimals is None


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


def parse_number(text: str) -> Number | None:
    """Read ``text`` (already normalised) as a plain real number, or return None.

    Accepts integers, decimals, scientific notation (``1.5e3``, ``1.5\\times10^{3}``), ``\\frac{a}{b}``, ``a/b``
    and mixed numbers (``2\\frac{1}{2}``).  Anything else (surds, pi, variables) is not a plain number.
    """
    s = text.replace(" ", "")
    if not s or len(s) > MAX_DIGITS or not any(c.isdigit() for c in s):
        return None
    if m := _RE_DEC.match(s):
        value, decimals, sig = _decimal(m.group(2))
        return Number(_signed(m.group(1), value), decimals, sig)
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


def _rounds_to(exact: Fraction, rounded: Fraction, decimals: int) -> bool:
    """Is ``rounded`` equal to ``exact`` rounded half-up/half-down to ``decimals`` places?"""
    return abs(exact - rounded) * 2 <= Fraction(10) ** (-decimals)


def numbers_equal(pred: Number, gold: Number) -> tuple[bool, str]:
    """Exact for exact values; for decimals, equal when one is the other correctly rounded.

    - exact vs exact: equality of rationals (``1/2`` == ``0.5`` since 0.5 is exactly 1/2).
    - gold is a decimal (already rounded): the prediction, rounded to the gold's precision, must equal it, and
      must be given with at least that precision (or exactly).
    - gold exact, prediction decimal: the prediction must be the gold correctly rounded and carry at least
      ``MIN_SIGNIFICANT`` significant digits (``0.333`` matches 1/3, ``0.33`` does not).
    """
    if pred.value == gold.value:
        return True, f"numeric: {_fmt(pred.value)} == {_fmt(gold.value)}"
    if not gold.exact:
        assert gold.decimals is not None
        if (pred.exact or (pred.decimals or 0) >= gold.decimals) and _rounds_to(pred.value, gold.value, gold.decimals):
            return True, f"numeric: prediction rounds to the gold's {gold.decimals} decimals"
        return False, f"numeric: {_fmt(pred.value)} != {_fmt(gold.value)}"
    if not pred.exact and pred.decimals is not None:
        if pred.significant >= MIN_SIGNIFICANT and _rounds_to(gold.value, pred.value, pred.decimals):
            return True, f"numeric: prediction is the exact gold rounded to {pred.decimals} decimals"
        return False, f"numeric: {_fmt(pred.value)} is not the exact gold {_fmt(gold.value)} correctly rounded"
    return False, f"numeric: {_fmt(pred.value)} != {_fmt(gold.value)}"


def _fmt(v: Fraction) -> str:
    s = str(v)
    return s if len(s) <= 40 else s[:18] + "…" + s[-18:]
