"""Symbolic comparison of two single expressions with sympy.

This module is the slow, unbounded path: it only ever runs inside a grader worker process (see
``isolation.py``), which the caller kills when it overruns its time limit, and which runs under a memory limit.

Model text reaches sympy only through ``latex2sympy2_extended``'s ANTLR grammar, which builds sympy objects
node by node; nothing here calls ``sympify``/``parse_expr``/``eval`` on a string (``latex2sympy2_extended`` uses
``parse_expr`` only for caller-supplied ``variable_values``, which we never pass).
"""

from __future__ import annotations

import random
from functools import lru_cache

import mpmath
import sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, latex2sympy
from latex2sympy2_extended.math_normalization import NormalizationConfig

from .numbers import MIN_SIGNIFICANT

MAX_SYMBOLIC_CHARS = 600  # longer expressions are not parsed at all
NUMERIC_DIGITS = 50
RANDOM_POINTS = 5

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


class Unparseable(ValueError):
    """The text is not an expression our LaTeX grammar understands."""


@lru_cache(maxsize=4096)
def to_sympy(text: str) -> sympy.Basic:
    """LaTeX (already normalised by us) -> sympy, via the ANTLR grammar only.  ``i`` is the imaginary unit."""
    if len(text) > MAX_SYMBOLIC_CHARS:
        raise Unparseable(f"expression longer than {MAX_SYMBOLIC_CHARS} characters")
    try:
        expr = latex2sympy(text, normalization_config=_NORM, conversion_config=_CONV)
    except Exception as exc:  # the grammar raises bare Exceptions on syntax errors
        raise Unparseable(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from None
    if isinstance(expr, sympy.Basic) and _I in expr.free_symbols:
        expr = expr.subs(_I, sympy.I)
    return expr


def _has_float(e: sympy.Basic) -> bool:
    return bool(e.atoms(sympy.Float))


def _written_decimals(e: sympy.Basic) -> int | None:
    """Fewest decimals among the decimal literals of ``e`` (its written precision), None if it has none."""
    floats = e.atoms(sympy.Float)
    if not floats:
        return None
    best = None
    for f in floats:
        text = sympy.sstr(f)
        dec = len(text.split(".", 1)[1].rstrip("0")) if "." in text else 0
        best = dec if best is None else min(best, dec)
    return best


def _numeric_equal(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str] | None:
    """Compare two closed-form numbers at high precision; None when they do not evaluate to numbers."""
    try:
        va = sympy.N(a, NUMERIC_DIGITS)
        vb = sympy.N(b, NUMERIC_DIGITS)
    except Exception:
        return None
    if not (va.is_number and vb.is_number) or va.has(sympy.nan, sympy.zoo) or vb.has(sympy.nan, sympy.zoo):
        return None
    if va.free_symbols or vb.free_symbols:
        return None
    if not (va.is_finite and vb.is_finite):  # oo, -oo, complex infinity: only identical ones are equal
        return (va == vb), "symbolic: infinities " + ("match" if va == vb else "differ")
    diff = abs(sympy.N(va - vb, NUMERIC_DIGITS))
    scale = max(abs(va), abs(vb))
    if _has_float(a) or _has_float(b):
        # A decimal was written: equal iff the decimal is the other value correctly rounded to its precision.
        decimals = min(d for d in (_written_decimals(a), _written_decimals(b)) if d is not None)
        sig = int(mpmath.floor(mpmath.log10(mpmath.mpf(str(scale))))) + 1 + decimals if scale else 0
        ok = diff * 2 <= sympy.Float(10) ** (-decimals) * (1 + sympy.Float(10) ** -12)
        if ok and sig >= MIN_SIGNIFICANT:
            return True, f"numeric: equal when rounded to {decimals} decimals"
        return False, "numeric: decimal differs from the exact value"
    if diff == 0 or diff <= scale * sympy.Float(10) ** (-(NUMERIC_DIGITS - 10)):
        return True, f"symbolic: equal to {NUMERIC_DIGITS - 10} significant digits"
    return False, "symbolic: values differ"


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
        if not v.is_number or v.has(sympy.nan, sympy.zoo):
            continue  # a pole: try another point
        if abs(v) > sympy.Float(10) ** -20:
            return False, "symbolic: differ at a sample point"
        zero += 1
    if zero >= 3:
        return True, f"symbolic: identical at {zero} random points"
    return None


def _expr_equal(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str]:
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


def expressions_equal(pred: str, gold: str) -> tuple[bool, str]:
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
        op_a, da = _relation_parts(a)
        op_b, db = _relation_parts(b)
        if op_a != op_b:
            return False, f"symbolic: relations differ ({op_a} vs {op_b})"
        if op_a == "=":
            ratio = sympy.simplify(da / db) if db != 0 else None
            ok = ratio is not None and not ratio.free_symbols and ratio != 0
            return bool(ok), "symbolic: equation " + ("multiples" if ok else "differs")
        ok, why = _expr_equal(da, db)
        return ok, why
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
            return False, "symbolic: matrix shapes differ"
        for x, y in zip(a, b, strict=True):
            ok, why = _expr_equal(x, y)
            if not ok:
                return False, why
        return True, "symbolic: matrices equal"
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        return _expr_equal(a, b)
    if isinstance(a, sympy.Set) and isinstance(b, sympy.Set):
        return (a == b), "symbolic: sets " + ("equal" if a == b else "differ")
    return False, f"symbolic: cannot compare {type(a).__name__} with {type(b).__name__}"
