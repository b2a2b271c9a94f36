"""The ``symbolic`` locator: verify checkable arithmetic in each step exactly, report the first wrong one.

A step is checkable when it states an equation between arithmetic expressions over numbers (``12 + 5 = 17``,
``3 x 4 = 12``, ``$1,200 / 4 = $300``) or carries GSM8K ``<<48/2=24>>`` annotations.  Expressions are parsed by
a small recursive-descent parser into exact fractions (model text is never ``eval``-ed); numbers beyond a bound
or too many operators make an equation uncheckable rather than slow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from .base import CORRECT, UNCHECKED, WRONG, Location, StepVerdicts

MAX_TOKENS = 64
MAX_DIGITS = 30

_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_NUM = r"\$?\d[\d,]*(?:\.\d+)?%?"
_EXPR = rf"(?:\(?\s*-?\s*{_NUM}\s*\)?)(?:\s*[-+*/x×÷]\s*\(?\s*-?\s*{_NUM}\s*\)?)+"
_EQUATION = re.compile(rf"({_EXPR})\s*=\s*(-?\s*{_NUM})(?!\d|\.\d)")
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/()])")


class _Uncheckable(ValueError):
    pass


def _tokens(expr: str) -> list[str]:
    s = expr.replace("$", "").replace(",", "").replace("%", "").replace("×", "*").replace("÷", "/")
    s = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", s)
    out, pos = [], 0
    while pos < len(s):
        if s[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(s, pos)
        if not m:
            raise _Uncheckable(expr)
        out.append(m.group(1))
        pos = m.end()
    if len(out) > MAX_TOKENS or any(len(t) > MAX_DIGITS for t in out):
        raise _Uncheckable(expr)
    return out


def evaluate(expr: str) -> Fraction:
    """Exact value of ``+ - * / ( )`` arithmetic over decimal numbers (unary minus allowed)."""
    toks = _tokens(expr)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise _Uncheckable(expr)
        pos += 1
        return toks[pos - 1]

    def atom() -> Fraction:
        t = take()
        if t == "-":
            return -atom()
        if t == "(":
            v = add()
            if take() != ")":
                raise _Uncheckable(expr)
            return v
        if t[0].isdigit():
            return Fraction(t)
        raise _Uncheckable(expr)

    def mul() -> Fraction:
        v = atom()
        while peek() in ("*", "/"):
            op, rhs = take(), atom()
            if op == "/" and rhs == 0:
                raise _Uncheckable(expr)
            v = v * rhs if op == "*" else v / rhs
        return v

    def add() -> Fraction:
        v = mul()
        while peek() in ("+", "-"):
            op, rhs = take(), mul()
            v = v + rhs if op == "+" else v - rhs
        return v

    value = add()
    if pos != len(toks):
        raise _Uncheckable(expr)
    return value


def _close(claimed_text: str, claimed: Fraction, true: Fraction) -> bool:
    """Exact, or the claim is the true value correctly rounded to the decimals it was written with (7/3 = 2.33)."""
    if claimed == true:
        return True
    m = re.search(r"\.(\d+)", claimed_text)
    return bool(m) and abs(true - claimed) * 2 <= Fraction(1, 10 ** len(m.group(1)))


@dataclass
class StepCheck:
    ok: bool | None  # None: nothing checkable in the step
    equations: list[tuple[str, str, bool]] = field(default_factory=list)  # (expression, claimed, correct)


def check_step(step: str) -> StepCheck:
    """Every checkable equation of one step, and whether all of them hold."""
    found: list[tuple[str, str, bool]] = []
    candidates = [(m.group(1), m.group(2)) for m in _ANNOTATION.finditer(step)]
    text = _ANNOTATION.sub(" ", step)
    candidates += [(m.group(1), m.group(2)) for m in _EQUATION.finditer(text)]
    for expr, claimed in candidates:
        try:
            ok = _close(claimed, evaluate(claimed), evaluate(expr))
        except (_Uncheckable, ZeroDivisionError, ValueError):
            continue
        found.append((expr.strip(), claimed.strip(), ok))
    if not found:
        return StepCheck(None)
    return StepCheck(all(ok for *_, ok in found), found)


def locate(steps: list[str]) -> Location:
    """The first step whose arithmetic is wrong.  Confidence 1.0 when found (exact); when every checkable step
    holds, nothing is located (the error, if any, is in reasoning arithmetic cannot see)."""
    checked = 0
    for i, step in enumerate(steps):
        res = check_step(step)
        if res.ok is None:
            continue
        checked += 1
        if not res.ok:
            bad = next(e for e in res.equations if not e[2])
            return Location(i, 1.0, f"step {i + 1}: {bad[0]} = {bad[1]} is false", outcome="located")
    if checked:
        return Location(None, 0.0, f"{checked} checkable steps, all correct", outcome="none")
    return Location(None, 0.0, "nothing checkable", outcome="unclear")


def verdicts(steps: list[str]) -> StepVerdicts:
    """Every step's verdict: correct when all its checkable equations hold, wrong when one does not, unchecked
    when it states none (the verdicts say nothing of reasoning that arithmetic cannot see)."""
    out, evidence = [], ""
    for i, step in enumerate(steps):
        res = check_step(step)
        out.append(UNCHECKED if res.ok is None else CORRECT if res.ok else WRONG)
        if res.ok is False and not evidence:
            bad = next(e for e in res.equations if not e[2])
            evidence = f"step {i + 1}: {bad[0]} = {bad[1]} is false"
    return StepVerdicts.of(out, evidence)
