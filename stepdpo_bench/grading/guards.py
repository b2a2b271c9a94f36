r"""Size-explosive answers, recognised from their text before any sympy call.

``10^{10^{10^{10}}}``, ``x^{x^{x^{x}}}``, ``9!!!!!!!!``, ``(10!)!`` and ``\sum_{k=1}^{10^6} k^k`` are short
strings whose values have more digits than atoms in the universe (or take sympy minutes); sympy would try.
They are decided here in microseconds (as "not shown equal", unless the two texts were already identical), so
the worker's deadline stays a backstop.
"""

from __future__ import annotations

import math
import re

MAX_DIGITS_ESTIMATE = 100_000  # values beyond ~10^100000 are not evaluated
MAX_TOWER = 3  # exponent nesting (a^{b^{c^{d}}}) at which a power counts as a tower
MAX_FACTORIAL = 20_000

_FACT_CHAIN = re.compile(r"!{3,}")
_FACT_NUM = re.compile(r"(\d+)\s*!")
_FACT_OF_FACT = re.compile(r"\)\s*!|!\s*\)\s*!|\}\s*!")
_FACT_OF_GROUP = re.compile(r"[({]\s*([^(){}!]*(?:\{[^{}]*\}[^(){}!]*)*)[)}]\s*!")  # (10^{100})!


def _exponents(s: str) -> list[tuple[str, str]]:
    """(base, exponent) text pairs for every ``^``: exponent in braces, or one token."""
    out = []
    for m in re.finditer(r"\^", s):
        base = re.search(r"(\d+|[A-Za-z]|\})\s*$", s[: m.start()])
        rest = s[m.end() :].lstrip()
        if rest.startswith("{"):
            depth, end = 0, len(rest)
            for k, c in enumerate(rest):
                depth += c == "{"
                depth -= c == "}"
                if depth == 0:
                    end = k
                    break
            exp = rest[1:end]
        else:
            t = re.match(r"-?\d+|[A-Za-z]|\\[A-Za-z]+", rest)
            exp = t.group(0) if t else ""
        out.append((base.group(1) if base else "", exp))
    return out


def _tower_depth(s: str, level: int = 0) -> int:
    if level > 8:
        return level
    best = 0
    for _, exp in _exponents(s):
        best = max(best, 1 + _tower_depth(exp, level + 1))
    return best


def _log10_value(base: str, exp: str) -> float | None:
    """log10 of base^exp when both are plain numbers or plain powers (a^{b^c}); None otherwise."""
    try:
        b = float(base)
    except ValueError:
        return None
    if abs(b) <= 1:
        return 0.0
    inner = _exponents(exp)
    if len(inner) == 1 and re.fullmatch(r"\d+\s*\^\s*\{?-?\d+\}?", exp.strip()):
        e_log = _log10_value(*inner[0])
        if e_log is None:
            return None
        return math.inf if e_log > 300 else (10**e_log) * math.log10(abs(b))
    try:
        e = float(exp)
    except ValueError:
        return None
    return e * math.log10(abs(b))


_BIG_SUM = re.compile(r"\\(sum|prod)_\{?[^}^]*?=\s*(-?\d+)\}?\^(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|\d)")
MAX_TERMS = 1000


def _bound(text: str) -> float | None:
    """A sum's upper limit as a number: ``1000``, ``10^{6}``, ``2^{20}``; None when symbolic (``n``)."""
    t = text.replace(" ", "")
    if re.fullmatch(r"-?\d{1,15}", t):
        return float(t)
    m = re.fullmatch(r"(\d+)\^\{?(\d+)\}?", t)
    if m:
        size = _log10_value(m.group(1), m.group(2))
        return math.inf if size is None or size > 300 else 10**size
    return None


def explosive(text: str) -> str | None:
    """Why ``text`` is too large to evaluate, or None."""
    for m in _BIG_SUM.finditer(text):
        upper = _bound(m.group(3).strip("{}"))
        if upper is not None and upper - int(m.group(2)[:12]) > MAX_TERMS:
            return f"a {'sum' if m.group(1) == 'sum' else 'product'} of more than {MAX_TERMS:,} terms"
    if _FACT_CHAIN.search(text):
        return "a chain of factorials"
    if _FACT_OF_FACT.search(text) and text.count("!") >= 2:
        return "a factorial of a factorial"
    for m in _FACT_OF_GROUP.finditer(text):
        inner = m.group(1).replace(" ", "")
        pw = re.fullmatch(r"(\d+)\^\{?(\d+)\}?", inner)
        size = _log10_value(pw.group(1), pw.group(2)) if pw else None
        if size is not None and 10 ** min(size, 300) > MAX_FACTORIAL:
            return f"the factorial of {inner[:24]}"
    for m in _FACT_NUM.finditer(text):
        if int(m.group(1)[:8]) > MAX_FACTORIAL or len(m.group(1)) > 8:
            return f"the factorial of {m.group(1)[:12]}"
    if _tower_depth(text) >= MAX_TOWER:
        return "a power tower"
    for base, exp in _exponents(text):
        size = _log10_value(base, exp)
        if size is not None and size > MAX_DIGITS_ESTIMATE:
            return "a power with more than 100,000 digits"
        if re.search(r"[A-Za-z]", base + exp) and _tower_depth(exp) >= 2:
            return "a power tower"
    return None
