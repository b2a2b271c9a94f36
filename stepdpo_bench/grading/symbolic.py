r"""Symbolic comparison of two single expressions with sympy.

This module is the slow, unbounded path: it only ever runs inside a grader worker process (see
``isolation.py``), which the caller kills when it overruns its time limit, and which runs under a memory limit.

Model text reaches sympy only through ``latex2sympy2_extended``'s ANTLR grammar, which builds sympy objects
node by node; nothing here calls ``sympify``/``parse_expr``/``eval`` on a string (``latex2sympy2_extended`` uses
``parse_expr`` only for caller-supplied ``variable_values``, which we never pass).

Exactness (docs/grading.md): a decimal written inside an expression is the exact rational it spells
(``0.5\pi`` = ``\pi/2``); integers and rationals compare exactly; irrational closed forms compare at a precision
scaled to their magnitude with an absolute threshold, never a relative tolerance (``2^{200}`` is not
``2^{200}+1``); an undefined value (``1/0``) is equal to nothing.  A decimal that only approximates an exact
value is accepted only where ``Rules`` allow rounding (the gold is a decimal, the problem asks for one).
"""

from __future__ import annotations

import contextlib
import random
import re
from functools import lru_cache

import mpmath
import sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, latex2sympy
from latex2sympy2_extended.math_normalization import NormalizationConfig

from .numbers import MIN_SIGNIFICANT, STRICT, Number, Rules, at_significant, parse_number, round_to

MAX_SYMBOLIC_CHARS = 600  # longer expressions are not parsed at all
RANDOM_POINTS = 5
EXTRA_DIGITS = 40  # digits beyond the magnitude of the values compared

_NORM = NormalizationConfig(
    basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False
)
_CONV = ConversionConfig(
    interpret_as_mixed_fractions=True,
    interpret_simple_eq_as_assignment=False,
    interpret_contains_as_eq=True,
    lowercase_symbols=False,
)
_I = sympy.Symbol("i")
_DECIMAL_LITERAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])")


class Unparseable(ValueError):
    """The text is not an expression our LaTeX grammar understands."""


def exact_decimals(text: str) -> str:
    """Every decimal literal rewritten as the fraction it spells: ``0.5\\pi`` -> ``\\frac{5}{10}\\pi``."""
    return _DECIMAL_LITERAL.sub(lambda m: f"\\frac{{{m.group(1)}{m.group(2)}}}{{1{'0' * len(m.group(2))}}}", text)


@lru_cache(maxsize=4096)
def to_sympy(text: str, exact: bool = True) -> sympy.Basic:
    """LaTeX (already normalised by us) -> sympy, via the ANTLR grammar only.  ``i`` is the imaginary unit.
    ``exact``: decimal literals become exact rationals first."""
    if len(text) > MAX_SYMBOLIC_CHARS:
        raise Unparseable(f"expression longer than {MAX_SYMBOLIC_CHARS} characters")
    try:
        expr = latex2sympy(exact_decimals(text) if exact else text, normalization_config=_NORM, conversion_config=_CONV)
    except Exception as exc:  # the grammar raises bare Exceptions on syntax errors
        raise Unparseable(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from None
    if isinstance(expr, sympy.Basic) and _I in expr.free_symbols:
        expr = expr.subs(_I, sympy.I)
    if isinstance(expr, sympy.MatrixExpr) and not isinstance(expr, sympy.MatrixBase):
        expr = expr.doit()
    return expr


def _undefined(e: sympy.Basic) -> bool:
    return bool(e.has(sympy.zoo, sympy.nan)) if isinstance(e, sympy.Basic) else False


def _log10(v: sympy.Expr) -> float | None:
    """log10 |v| from a 15-digit evaluation (mpmath keeps huge and tiny exponents); None for 0 or no number."""
    try:
        x = abs(sympy.N(v, 15))
        return None if x == 0 or not x.is_number else float(mpmath.log10(mpmath.mpf(str(x))))
    except (TypeError, ValueError, OverflowError):
        return None


def _numeric_equal(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str] | None:
    """Exact values compared without a relative tolerance: rationals exactly (``1/2004!`` is evaluated, not
    approximated); closed forms at a precision that resolves the smaller value with 30 digits to spare, against
    an absolute threshold below it.  None when they do not evaluate to finite numbers."""
    with contextlib.suppress(Exception):  # unevaluated factorials, sums: exact values where sympy can
        a, b = a.doit(), b.doit()
    if a.is_Rational and b.is_Rational:
        return (a == b), "symbolic: exact values " + ("equal" if a == b else "differ")
    d = a - b
    if d.is_Rational:  # like terms cancelled exactly: 10^50+sqrt2 vs 10^50+sqrt2+1 differ by exactly 1
        return (d == 0), "symbolic: exact difference " + ("0" if d == 0 else "non-zero")
    logs = [x for x in (_log10(a), _log10(b)) if x is not None]
    hi, lo = (max(logs), min(logs)) if logs else (0.0, 0.0)
    digits = EXTRA_DIGITS + int(max(0.0, hi)) + int(max(0.0, -lo))
    try:
        va, vb = sympy.N(a, digits), sympy.N(b, digits)
    except Exception:
        return None
    if not (va.is_number and vb.is_number) or _undefined(va) or _undefined(vb) or va.free_symbols or vb.free_symbols:
        return None
    if not (va.is_finite and vb.is_finite):  # oo, -oo, complex infinity: only identical ones are equal
        return (va == vb), "symbolic: infinities " + ("match" if va == vb else "differ")
    diff = abs(sympy.N(d, digits))
    if diff <= sympy.Float(10) ** -(30 + int(max(0.0, -lo))):
        return True, f"symbolic: equal to {digits} digits"
    return False, "symbolic: values differ"


def _rounded_match(pred: str, gold: str, a: sympy.Expr, b: sympy.Expr, rules: Rules) -> tuple[bool, str] | None:
    """Rounding, where it is allowed: the gold is a plain decimal (the prediction must round to it), or the problem
    asks for a decimal (a correctly rounded prediction) or a precision (the gold rounded there)."""
    gn, pn = parse_number(gold), parse_number(pred)
    try:
        va = sympy.N(a, 50)
        vb = sympy.N(b, 50)
        if not (va.is_real and vb.is_real):
            return None
        fa = sympy.Rational(str(va)) if pn is None else sympy.Rational(pn.value.numerator, pn.value.denominator)
        fb = sympy.Rational(str(vb)) if gn is None else sympy.Rational(gn.value.numerator, gn.value.denominator)
    except (TypeError, ValueError):
        return None
    from fractions import Fraction

    exact_a, exact_b = Fraction(int(fa.p), int(fa.q)), Fraction(int(fb.p), int(fb.q))
    if gn is not None and gn.decimals is not None:  # a decimal gold: the prediction rounds to it
        ok = abs(exact_a - gn.value) * 2 <= Fraction(10) ** (-gn.decimals)
        return ok, "numeric: " + ("rounds to the gold's decimals" if ok else "does not round to the decimal gold")
    if pn is not None and pn.decimals is not None and rules.approximations_ok:
        if rules.significant and not rules.lenient:
            return at_significant(pn, Number(exact_b), rules.significant)
        if rules.decimals is not None:
            ok = pn.value == round_to(exact_b, rules.decimals) or (
                pn.decimals > rules.decimals and abs(exact_b - pn.value) * 2 <= Fraction(10) ** (-pn.decimals)
            )
            return ok, f"numeric: {'is' if ok else 'is not'} the gold rounded as the problem asks"
        ok = pn.significant >= MIN_SIGNIFICANT and abs(exact_b - pn.value) * 2 <= Fraction(10) ** (-pn.decimals)
        return ok, "numeric: " + ("the exact gold correctly rounded" if ok else "decimal differs from the exact value")
    if pn is not None and pn.decimals is not None:
        return False, "numeric: a decimal approximation of an exact value"
    return None


def _random_points_equal(d: sympy.Expr) -> tuple[bool, str] | None:
    """Identity test of ``d == 0`` at random points (Schwartz–Zippel style) when simplify is inconclusive."""
    symbols = sorted(d.free_symbols, key=str)
    rng = random.Random(0)
    zero = 0
    for _ in range(RANDOM_POINTS):
        point = {s: sympy.Rational(rng.choice((-1, 1)) * rng.randint(3, 97), rng.randint(2, 13)) for s in symbols}
        try:
            v = sympy.N(d.subs(point), 30)
        except Exception:
            return None
        if not v.is_number or _undefined(v):
            continue  # a pole: try another point
        if abs(v) > sympy.Float(10) ** -20:
            return False, "symbolic: differ at a sample point"
        zero += 1
    if zero >= 3:
        return True, f"symbolic: identical at {zero} random points"
    return None


def _expr_equal(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str]:
    if _undefined(a) or _undefined(b):
        return False, "symbolic: undefined value (division by zero)"
    if a == b:
        return True, "symbolic: identical expressions"
    if not (a.free_symbols or b.free_symbols):
        res = _numeric_equal(a, b)
        if res is not None:
            return res
    d = a - b
    try:
        if sympy.simplify(d) == 0:
            return True, "symbolic: difference simplifies to 0"
    except Exception:
        pass
    res = _random_points_equal(d) if d.free_symbols else _numeric_equal(a, b)
    if res is not None:
        return res
    return False, "symbolic: not shown equal"


def _relation_parts(r: sympy.Basic) -> tuple[str, sympy.Expr]:
    """Canonical (operator, lhs - rhs) with the inequality pointing '<'."""
    if isinstance(r, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        r = r.reversed
    op = {sympy.StrictLessThan: "<", sympy.LessThan: "<=", sympy.Unequality: "!=", sympy.Equality: "="}
    return op.get(type(r), "?"), r.lhs - r.rhs


def equations_equal(lhs1: str, rhs1: str, lhs2: str, rhs2: str) -> tuple[bool, str]:
    """Equations are equal when one is a non-zero constant multiple of the other (``y=2x+1`` ~ ``2y-4x=2``)."""
    d1 = to_sympy(lhs1) - to_sympy(rhs1)
    d2 = to_sympy(lhs2) - to_sympy(rhs2)
    if d1 == 0 or d2 == 0:
        return (d1 == d2), "symbolic: degenerate equation"
    ratio = sympy.simplify(d1 / d2)
    if not ratio.free_symbols and ratio != 0 and ratio.is_finite:
        return True, f"symbolic: equations differ by the factor {ratio}"
    return False, "symbolic: equations are not multiples of each other"


def _relations_equal(a: sympy.Rel, b: sympy.Rel) -> tuple[bool, str]:
    op_a, da = _relation_parts(a)
    op_b, db = _relation_parts(b)
    if op_a != op_b:
        return False, f"symbolic: relations differ ({op_a} vs {op_b})"
    if op_a in ("=", "!="):
        ratio = sympy.simplify(da / db) if db != 0 else None
        ok = ratio is not None and not ratio.free_symbols and ratio != 0
        return bool(ok), "symbolic: relation " + ("multiples" if ok else "differs")
    # inequalities: the same set when one side is a positive multiple of the other (-x > -1 ~ x < 1)
    ratio = sympy.simplify(da / db) if db != 0 else None
    ok = ratio is not None and not ratio.free_symbols and ratio.is_positive
    return bool(ok), "symbolic: inequality " + ("equivalent" if ok else "differs")


def expressions_equal(pred: str, gold: str, rules: Rules = STRICT) -> tuple[bool, str]:
    """Symbolic equality of two single expressions (no tuples/sets: those are split by ``structures``)."""
    try:
        a = to_sympy(pred)
    except Unparseable as exc:
        return False, f"unparseable prediction: {exc}"
    try:
        b = to_sympy(gold)
    except Unparseable as exc:
        return False, f"unparseable gold: {exc}"
    if isinstance(a, sympy.Rel) or isinstance(b, sympy.Rel):
        if not (isinstance(a, sympy.Rel) and isinstance(b, sympy.Rel)):
            return False, "symbolic: relation vs expression"
        return _relations_equal(a, b)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
            return False, "symbolic: matrix shapes differ"
        for x, y in zip(a, b, strict=True):
            ok, why = _expr_equal(x, y)
            if not ok:
                return False, why
        return True, "symbolic: matrices equal"
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        ok, why = _expr_equal(a, b)
        if not ok and not (a.free_symbols or b.free_symbols) and not (_undefined(a) or _undefined(b)):
            rounded = _rounded_match(pred, gold, a, b, rules)
            if rounded is not None:
                return rounded
        return ok, why
    if isinstance(a, sympy.Set) and isinstance(b, sympy.Set):
        return (a == b), "symbolic: sets " + ("equal" if a == b else "differ")
    return False, f"symbolic: cannot compare {type(a).__name__} with {type(b).__name__}"
