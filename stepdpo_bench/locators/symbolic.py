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
_CLAIM = re.compile(rf"\s*(-?\s*{_NUM})(?!\d|\.\d)")
_LHS_CHARS = frozenset("0123456789 \t$,.%+-*/()÷")
_TIMES = re.compile(r"(?<=[\d)%])(\s*)[x×](\s*)(?=[\d($])")
_BINARY = re.compile(r"[\d)%]\s*[-+*/÷]\s*[-(\d$.]")
_BOUNDARY = re.compile(r"(?<=[\w)%])[.,;:]\s")
_WORD_BEFORE = re.compile(r"(?:^|\s)[x×]\s*$")  # "15 pages x 1/3": multiplied in words
_AND_BEFORE = re.compile(r"\d\s+and\s*$")  # "12 x 1 and 1/4": a mixed number in words
_MORE_AFTER = re.compile(
    r"\s*(?:[-+*/×÷^(=]|\d|[.,]\d|x\s*\d)|[A-Za-z]|\s+and\s+\(?\d+\s*/|\s+(?:cents?\b|thousand|million|billion|hundred)"
)  # a chain, a mixed number ("5 and 2/3"), a variable ("5A/5"), another unit ("50 cents")
_SPACED_DIVISION = re.compile(r"(?:\s/|/\s)")
MAX_LHS = 400
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/()])")


class _Uncheckable(ValueError):
    pass


def _tokens(expr: str, percent: bool = False) -> list[str]:
    """``percent``: read ``50%`` as 50/100 (else as 50; a claim is checked under both readings)."""
    s = expr.replace("$", "").replace(",", "").replace("×", "*").replace("÷", "/")
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)  # ".75" is 0.75
    s = re.sub(r"(\d(?:\.\d+)?)%", r"(\1/100)", s) if percent else s.replace("%", "")
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


def evaluate(expr: str, percent: bool = False) -> Fraction:
    """Exact value of ``+ - * / ( )`` arithmetic over decimal numbers (unary minus allowed)."""
    toks = _tokens(expr, percent)
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


def _equations(text: str) -> list[tuple[str, str]]:
    """``(expression, claimed value)`` for each ``=`` in the text whose left side is arithmetic over numbers.

    A scan, not one big pattern: a backtracking pattern for "expression = number" took minutes on a 30-term sum
    whose value did not follow (GSM8K train #5619), and model text is untrusted.  Each ``=`` costs at most
    ``MAX_LHS`` characters of scanning back.  Pieces of a claim are not checked, since a wrong verdict on a
    correct step is worse than none: the tail of a longer expression (``9 hours * 2/3 = 6`` is not ``2/3 = 6``),
    the middle of a chain (``14 * 1/2 = 14 / 2 = 7``), a value followed by more (``= 3 1/2``); on GSM8K's gold
    solutions that keeps every checkable step but one (a real slip in the data) from being called wrong.
    """
    text = _TIMES.sub(r"\1*\2", text)
    out = []
    for eq in re.finditer("=", text):
        i = eq.start()
        j = i
        while j > 0 and i - j < MAX_LHS and text[j - 1] in _LHS_CHARS:
            j -= 1
        if j > 0 and (text[j - 1] in "=<>" or (text[j - 1] == ":" and text[j].isdigit())):
            continue  # the middle of a chain, an inequality, a time of day ("6:00+48")
        if _WORD_BEFORE.search(text[: j + (len(text[j:i]) - len(text[j:i].lstrip()))]):
            continue  # multiplied in words: the expression starts before the numbers
        lhs = text[j:i]
        cut = list(_BOUNDARY.finditer(lhs))
        lhs = lhs[cut[-1].end() :] if cut else lhs  # "he had 5. 3 + 4": the sentence before is not part of it
        lhs = re.sub(r"^(?:[\s,;:]|\.\s)+", "", lhs).strip()
        if not lhs or lhs[0] in "+*/÷" or lhs[:2] in ("- ", "-\t") or not _BINARY.search(lhs):
            continue  # a dangling operator: the left part of the expression is words ("9 hours * 2/3")
        if _AND_BEFORE.search(text[:j]) and re.match(r"\(?\d+\s*/", lhs):
            continue
        if "/" in lhs and _SPACED_DIVISION.search(lhs) and re.search(r"\d/\d", lhs):
            continue  # grouping by spacing ("25 / 1/3" means 25 / (1/3)): precedence we cannot know
        m = _CLAIM.match(text, i + 1)
        if not m or _MORE_AFTER.match(text, m.end()):
            continue  # no number after "=", or more follows it (a chain, a mixed number)
        out.append((lhs, m.group(1)))
    return out


def check_step(step: str) -> StepCheck:
    """Every checkable equation of one step, and whether all of them hold."""
    found: list[tuple[str, str, bool]] = []
    step = step.replace("\u2013", "-").replace("\u2212", "-")  # en dash and minus sign, as written for minus
    candidates = [(m.group(1), m.group(2)) for m in _ANNOTATION.finditer(step)]
    candidates += _equations(_ANNOTATION.sub("", step))  # "= $<<a=b>>442": the text's own claim reads "$442"
    for expr, claimed in candidates:
        readings = (False, True) if "%" in expr + claimed else (False,)
        try:  # correct under some reading of its percent signs: "3 / 6 = 50%" and "10 / 50 * 100 = 20%" both hold
            ok = any(_close(claimed, evaluate(claimed, pc), evaluate(expr, pc)) for pc in readings)
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
