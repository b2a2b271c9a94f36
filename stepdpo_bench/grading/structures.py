"""The shape of an answer: tuple, set, interval, union, matrix, equation or a single expression.

We parse shape ourselves (bracket matching over the normalised text) rather than asking a LaTeX parser, because
the peers' parsers blur exactly what matters here: ``(1,2)`` vs ``(2,1)``, ``[2,5)`` vs ``(2,5]``, ``12`` vs
``1,2``.  Only the leaves (:class:`Atom`) ever reach numeric or symbolic comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DEPTH = 50  # deeper bracket nesting is treated as one opaque atom


@dataclass(frozen=True)
class Atom:
    """A single expression, compared numerically or symbolically."""

    text: str


@dataclass(frozen=True)
class Seq:
    """A bracketed or bare comma list.  ``open``/``close`` are ``(`` ``)`` ``[`` ``]`` ``{`` ``}`` or empty (bare)."""

    open: str
    close: str
    items: tuple[Node, ...]

    @property
    def unordered(self) -> bool:
        return self.open in ("{", "")


@dataclass(frozen=True)
class Union:
    """``A \\cup B \\cup ...`` (of intervals or sets); the order of the parts does not matter."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` (also ``lhs \\in rhs``); ``lhs`` kept as text, ``rhs`` parsed."""

    lhs: str
    rhs: Node
    rhs_text: str


Node = Atom | Seq | Union | Matrix | Equation

_OPEN = {"(": ")", "[": "]", "{": "}"}
_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.S)
_SIMPLE_LHS = re.compile(r"^(?:[a-zA-Z](?:_\{?\w+\}?)?(?:'+)?|\\[a-zA-Z]+(?:_\{?\w+\}?)?|[a-zA-Z]\([a-zA-Z]\))$")
_RELATIONS = ("\\leq", "\\geq", "\\le", "\\ge", "\\neq", "\\ne", "<", ">", "\\lt", "\\gt")


def _tokens(s: str):
    """Yield (index, char, depth-before) with ``\\{``/``\\}`` counted as braces and ``\\left``-free text."""
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            c2 = s[i + 1]
            if c2 == "{":
                yield i, "\\{", depth
                depth += 1
            else:
                depth -= 1
                yield i, "\\}", depth
            i += 2
            continue
        if c in "([{":
            yield i, c, depth
            depth += 1
        elif c in ")]}":
            depth -= 1
            yield i, c, depth
        else:
            yield i, c, depth
        i += 1


def split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` where it stands outside every bracket; brackets may be mismatched in kind (``[a,b)``)."""
    parts: list[str] = []
    start = 0
    k = len(sep)
    for i, _, depth in _tokens(s):
        if depth != 0 or i < start or not s.startswith(sep, i):
            continue
        if sep[0] == "\\" and s[i + k : i + k + 1].isalpha():
            continue  # \in is not \infty, \cup is not \cupdot
        parts.append(s[start:i])
        start = i + k
    parts.append(s[start:])
    return parts


def _balanced(s: str) -> bool:
    opened = 0
    for _, c, depth in _tokens(s):
        if c in ")]}" or c == "\\}":
            opened -= 1
            if depth < 0:
                return False
        elif c in "([{" or c == "\\{":
            opened += 1
    return opened == 0


def _enclosing(s: str) -> tuple[str, str, str] | None:
    """If one bracket pair encloses all of ``s``, return (open, close, inner); kinds may differ (intervals)."""
    if s.startswith("\\{") and s.endswith("\\}"):
        opener, closer, inner = "{", "}", s[2:-2]
    elif s[:1] in "([" and s[-1:] in ")]":
        opener, closer, inner = s[0], s[-1], s[1:-1]
    else:
        return None  # bare TeX grouping braces {..} are not a set
    return (opener, closer, inner) if _balanced(inner) else None


def _depth(s: str) -> int:
    best = 0
    for _, _, d in _tokens(s):
        best = max(best, d)
    return best


def parse(s: str, _level: int = 0) -> Node:
    """Parse a normalised answer into its shape.  Total and linear-ish: never raises, never recurses deeply."""
    s = s.strip()
    if _level > 6 or _depth(s) > MAX_DEPTH:
        return Atom(s)
    m = _MATRIX.match(s)
    if m:
        body = m.group(2).strip()
        rows = [r for r in re.split(r"\\\\", body) if r.strip() and r.strip() != "\\hline"]
        if rows:
            return Matrix(tuple(tuple(parse(c, _level + 1) for c in row.split("&")) for row in rows))
    union = split_top(s, "\\cup")
    if len(union) > 1 and all(p.strip() for p in union):
        return Union(tuple(parse(p, _level + 1) for p in union))
    for rel in ("\\in", "="):
        sides = split_top(s, rel)
        if len(sides) == 2 and sides[0].strip() and sides[1].strip():
            lhs, rhs = sides[0].strip(), sides[1].strip()
            if rel == "=" and (lhs.endswith(("<", ">", "!", "\\le", "\\ge")) or rhs.startswith("=")):
                break
            if "," in lhs and rel == "=" and _SIMPLE_LHS.match(lhs.split(",")[-1].strip()):
                break  # "x=1, y=2" style lists are handled by the comma split below
            return Equation(lhs, parse(rhs, _level + 1), rhs)
    enc = _enclosing(s)
    if enc:
        opener, closer, inner = enc
        items = split_top(inner, ",")
        if len(items) > 1 or opener == "{":
            return Seq(opener, closer, tuple(parse(i, _level + 1) for i in items if i.strip() or opener != "{"))
        return Atom(s)
    items = split_top(s, ",")
    if len(items) > 1 and all(i.strip() for i in items):
        return Seq("", "", tuple(parse(i, _level + 1) for i in items))
    return Atom(s)


def simple_lhs(lhs: str) -> bool:
    """``x``, ``y_1``, ``f(x)``, ``\\theta``: a name being assigned, which a bare-value gold does not need."""
    return bool(_SIMPLE_LHS.match(lhs.strip()))


def is_relation(s: str) -> bool:
    return any(r in s for r in _RELATIONS)
