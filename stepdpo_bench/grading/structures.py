r"""The shape of an answer: tuple, set, interval, union, matrix, equation, ratio, time or a single expression.

We parse shape ourselves (bracket matching over the normalised text) rather than asking a LaTeX parser, because
the peers' parsers blur exactly what matters here: ``(1,2)`` vs ``(2,1)``, ``[2,5)`` vs ``(2,5]``, ``12`` vs
``1,2``, ``12:00`` vs ``1:00``.  Only the leaves (:class:`Atom`) ever reach numeric or symbolic comparison.

Forms read as the objects they describe (docs/grading.md):

- inequalities in one variable are intervals: ``x > 4`` is ``(4,\infty)``, ``-1 \le x \le 6`` is ``[-1,6]``,
  ``x<1, x>4`` (from "or") is ``(-\infty,1)\cup(4,\infty)``, ``1 \le |z| \le 2`` is ``[-2,-1]\cup[1,2]``;
- ``\pm`` expands into its two values (``2 \pm \sqrt7`` is the list ``2+\sqrt7, 2-\sqrt7``);
- ``;`` separates items where commas are taken (``(0;0;0)``, ``-12;-11``, ``p=5,q=2;p=7,q=2``);
- chains keep their last member (``x = 5+5+1 = 11`` is ``x = 11``); ``\approx`` keeps the exact side;
- matrices in any environment, a bracketed ``[a, b; c, d]``, a scalar or a sign times a matrix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DEPTH = 50  # deeper bracket nesting is treated as one opaque atom
MAX_PM = 3  # at most 2**3 expansions of \pm


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


@dataclass(frozen=True)
class Ratio:
    """``a : b`` (two or more parts): equal to another ratio when the parts are proportional."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Time:
    """A time of day ``h:mm`` (24-hour, with am/pm read): compared as a time, never as a division."""

    minutes: int


Node = Atom | Seq | Union | Matrix | Equation | Ratio | Time

_OPEN = {"(": ")", "[": "]", "{": "}"}
_ENV = r"(?:[pbBvV]?matrix|array|smallmatrix)"
_MATRIX = re.compile(rf"^\\begin\{{({_ENV})\}}(?:\{{[^{{}}]*\}})?(.*)\\end\{{\1\}}$", re.S)
_SCALED_MATRIX = re.compile(
    rf"^(-?(?:\\frac\{{[^{{}}]+\}}\{{[^{{}}]+\}}|\d+(?:\.\d+)?(?:/\d+)?)?)\s*(?:\\cdot)?\s*"
    rf"(\\begin\{{{_ENV}\}}.*\\end\{{{_ENV}\}})$",
    re.S,
)
_SIMPLE_LHS = re.compile(r"^(?:[a-zA-Z](?:_\{?\w+\}?)?(?:'+)?|\\[a-zA-Z]+(?:_\{?\w+\}?)?|[a-zA-Z]\([a-zA-Z]\))$")
_RELATIONS = ("\\leq", "\\geq", "\\le", "\\ge", "\\neq", "\\ne", "<", ">", "\\lt", "\\gt")
_INEQ_OP = re.compile(r"\\leq?(?![a-z])|\\geq?(?![a-z])|\\lt(?![a-z])|\\gt(?![a-z])|<=|>=|=<|=>|<|>|≤|≥")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$", re.I)
_INF = {"\\infty", "+\\infty", "\\infinity", "oo", "∞"}


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
        if sep == "=" and (s[i - 1 : i] in "<>!\\" or s[i + 1 : i + 2] in "<>"):
            continue  # <=, >=, !=, =< are relations
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


def name_lhs(lhs: str) -> bool:
    """Is ``lhs`` a name for the answer rather than part of it: ``x``, ``y_1``, ``f(x)``, ``\\theta``, ``(p,q,r)``,
    ``AB``, ``|AB|``, ``\\frac{NO}{BO}``, ``V_1:V_2``, ``a+b+c``?  Names carry no digits outside subscripts."""
    t = re.sub(r"_\{[^{}]*\}|_\w", "", lhs.strip())
    t = re.sub(r"\\(?:frac|left|right|text|mathrm|operatorname|overline|angle|triangle|cdot)", "", t)
    if not t or any(c.isdigit() for c in t) or not re.search(r"[A-Za-z]", t) or t.lstrip()[:1] in "+-":
        return False
    return bool(re.fullmatch(r"[A-Za-z\\{}()\[\]|,:+\-*/' ]+", t))


def simple_lhs(lhs: str) -> bool:
    """``x``, ``y_1``, ``f(x)``, ``\\theta``: a single name being assigned."""
    return bool(_SIMPLE_LHS.match(lhs.strip()))


def is_relation(s: str) -> bool:
    return any(r in s for r in _RELATIONS)


# ---- special forms -------------------------------------------------------------------------------------------


def _matrix(s: str, level: int) -> Node | None:
    """A matrix environment, optionally scaled (``\\frac13\\begin{pmatrix}..``, ``-\\begin{pmatrix}..``) or wrapped
    in brackets (``[\\begin{array}..]``), or a bracketed ``[a, b; c, d]``."""
    inner = s
    enc = _enclosing(s)
    if enc and _MATRIX.match(enc[2].strip()):
        inner = enc[2].strip()
    coef = ""
    m = _SCALED_MATRIX.match(inner)
    if m and m.group(1):
        coef, inner = m.group(1), m.group(2).strip()
    m = _MATRIX.match(inner)
    if m and "\\end{" not in m.group(2) and "\\begin{" not in m.group(2):  # one matrix, not A + B
        body = m.group(2).strip()
        rows = [r for r in re.split(r"\\\\", body) if r.strip() and r.strip() != "\\hline"]
        rows = [re.sub(r"\\hline", "", r) for r in rows]
        if rows:
            return Matrix(tuple(tuple(parse(_scale(coef, c), level + 1) for c in row.split("&")) for row in rows))
    if enc and enc[0] == "[" and enc[1] == "]" and ";" in enc[2] and "," in enc[2]:  # [1, 2; 3, 4]
        rows = split_top(enc[2], ";")
        return Matrix(tuple(tuple(parse(c, level + 1) for c in split_top(r, ",")) for r in rows))
    return None


def _scale(coef: str, cell: str) -> str:
    """``coef`` times a cell, as text; plain numbers are multiplied out exactly."""
    cell = cell.strip()
    if not coef:
        return cell
    if coef == "-":
        return cell[1:] if cell.startswith("-") else "-" + cell
    from .numbers import parse_number

    a, b = parse_number(coef), parse_number(cell)
    if a is not None and b is not None and a.exact and b.exact:
        v = a.value * b.value
        return str(v.numerator) if v.denominator == 1 else f"\\frac{{{v.numerator}}}{{{v.denominator}}}"
    return f"({coef})\\cdot({cell})"


def _ineq_parts(s: str) -> tuple[list[str], list[str]] | None:
    """Split ``a < x \\le b`` into operands and operators (outside brackets); None if there is no inequality."""
    ops = [(m.start(), m.end(), m.group(0)) for m in _INEQ_OP.finditer(s)]
    depth_at = {i: d for i, _, d in _tokens(s)}
    ops = [o for o in ops if depth_at.get(o[0], 0) == 0]
    if not ops:
        return None
    operands, start = [], 0
    for a, b, _ in ops:
        operands.append(s[start:a].strip())
        start = b
    operands.append(s[start:].strip())
    if any(not x for x in operands):
        return None
    return operands, [_canon_op(o) for _, _, o in ops]


def _canon_op(op: str) -> str:
    return {
        "\\le": "<=",
        "\\leq": "<=",
        "=<": "<=",
        "≤": "<=",
        "\\ge": ">=",
        "\\geq": ">=",
        "=>": ">=",
        "≥": ">=",
        "\\lt": "<",
        "\\gt": ">",
    }.get(op, op)


def _interval(lo: str, lo_closed: bool, hi: str, hi_closed: bool) -> Seq:
    return Seq("[" if lo_closed else "(", "]" if hi_closed else ")", (Atom(lo), Atom(hi)))


def inequality(s: str) -> tuple[str, Node] | None:
    """A one-variable inequality as (variable, interval or union): ``x > 4`` -> ``(4, \\infty)``.  Bounds must be
    free of the variable's letters (``f(2) < f(1)`` is not one)."""
    parts = _ineq_parts(s)
    if parts is None:
        return None
    operands, ops = parts
    flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
    if len(operands) == 2:
        (a, b), (op,) = operands, ops
        for side in (0, 1):  # -x > -1 is x < 1
            v = (a, b)[side]
            if v.startswith("-") and name_lhs(v[1:]) and not name_lhs((a, b)[1 - side]):
                a, b = (_neg(a), _neg(b))
                op = flip[op]
                break
        if name_lhs(a) and not name_lhs(b):
            var, bound, op = a, b, op
        elif name_lhs(b) and not name_lhs(a):
            var, bound, op = b, a, flip[op]
        else:
            return None
        if _mentions(bound, var):
            return None
        absolute = _abs_var(var)
        if op in (">", ">="):
            node: Node = _interval(bound, op == ">=", "\\infty", False)
            if absolute:  # |x| > b: (-inf, -b) u (b, inf)
                node = Union((_interval("-\\infty", False, _neg(bound), op == ">="), node))
        else:
            node = _interval("-\\infty", False, bound, op == "<=")
            if absolute:
                node = _interval(_neg(bound), op == "<=", bound, op == "<=")
        return (absolute or var), node
    if len(operands) == 3 and name_lhs(operands[1]) and ops[0][0] == ops[1][0] and ops[0][0] in "<>":
        lo, var, hi = operands
        lo_op, hi_op = ops
        if lo_op[0] == ">":
            lo, hi, lo_op, hi_op = hi, lo, {">": "<", ">=": "<="}[hi_op], {">": "<", ">=": "<="}[lo_op]
        if _mentions(lo, var) or _mentions(hi, var):
            return None
        absolute = _abs_var(var)
        node = _interval(lo, lo_op == "<=", hi, hi_op == "<=")
        if absolute:  # a <= |x| <= b: [-b, -a] u [a, b]
            node = Union((_interval(_neg(hi), hi_op == "<=", _neg(lo), lo_op == "<="), node))
        return (absolute or var), node
    return None


def _abs_var(var: str) -> str | None:
    m = re.fullmatch(r"\|(.+)\|", var.strip())
    return m.group(1) if m else None


def _neg(x: str) -> str:
    x = x.strip()
    return x[1:] if x.startswith("-") else "-" + x


def _mentions(bound: str, var: str) -> bool:
    letters = set(re.findall(r"(?<!\\)[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", var)))
    return bool(letters & set(re.findall(r"(?<!\\)[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", bound))))


def expand_pm(s: str) -> list[str] | None:
    """``2 \\pm \\sqrt7`` -> ``["2+\\sqrt7", "2-\\sqrt7"]``; None when there is no top-level ``\\pm``/``\\mp``."""
    if "\\pm" not in s and "\\mp" not in s:
        return None
    out = [s]
    for _ in range(MAX_PM):
        nxt = []
        for t in out:
            m = re.search(r"\\(pm|mp)(?![a-z])", t)
            if not m:
                nxt.append(t)
                continue
            a, b = ("+", "-") if m.group(1) == "pm" else ("-", "+")
            nxt += [t[: m.start()] + a + t[m.end() :], t[: m.start()] + b + t[m.end() :]]
        out = nxt
    return [re.sub(r"^\+", "", t.replace("(+", "(").replace(",+", ",")) for t in out]


def _time(s: str) -> Time | None:
    m = _TIME.match(s)
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24:
        return None
    ampm = (m.group(4) or "").lower().replace(".", "")
    if ampm == "pm" and h < 12:
        h += 12
    if ampm == "am" and h == 12:
        h = 0
    return Time(h * 60 + mi)


# ---- the parser ----------------------------------------------------------------------------------------------


def parse(s: str, _level: int = 0) -> Node:
    """Parse a normalised answer into its shape.  Total and linear-ish: never raises, never recurses deeply."""
    s = s.strip()
    if _level > 8 or _depth(s) > MAX_DEPTH:
        return Atom(s)
    if "\\approx" in s:
        return _approx(s, _level)
    mat = _matrix(s, _level)
    if mat is not None:
        return mat
    union = split_top(s, "\\cup")
    if len(union) > 1 and all(p.strip() for p in union):
        return Union(tuple(parse(p, _level + 1) for p in union))
    semis = split_top(s, ";")
    if len(semis) > 1 and all(p.strip() for p in semis) and not _enclosing(s):
        items = [parse(p, _level + 1) for p in semis]
        return Seq("", "", tuple(_assignments_as_tuple(i) for i in items))
    for rel in ("\\in", "="):
        sides = split_top(s, rel)
        if len(sides) >= 2 and all(x.strip() for x in sides):
            if rel == "=" and len(sides) > 2 and len(split_top(s, ",")) == 1:  # a chain: its last member counts
                first = sides[0].strip()
                return (
                    Equation(first, parse(sides[-1], _level + 1), sides[-1].strip())
                    if name_lhs(first)
                    else parse(sides[-1], _level + 1)
                )
            lhs, rhs = sides[0].strip(), sides[1].strip()
            if rel == "=" and ("," in lhs or "," in rhs) and not _enclosing(lhs) and not _enclosing(rhs):
                break  # "x=1, y=2" style lists are handled by the comma split below
            if rel == "\\in" and _abs_var(lhs) is None and not name_lhs(lhs):
                break
            return Equation(lhs, parse(rhs, _level + 1), rhs)
    commas = split_top(s, ",")
    if len(commas) > 1 and all(i.strip() for i in commas) and not _enclosing(s):
        items = [parse(i, _level + 1) for i in _expand_items(commas)]
        return _merge_inequalities(commas) or Seq("", "", tuple(items))
    ineq = inequality(s)
    if ineq is not None:
        return ineq[1]
    enc = _enclosing(s)
    if enc:
        opener, closer, inner = enc
        items = split_top(inner, ",")
        if len(items) == 1 and ";" in inner:  # (0;0;0): semicolons as commas
            items = split_top(inner, ";")
        if opener == "{":  # a set: \pm items expand into both values
            return Seq(opener, closer, tuple(parse(i, _level + 1) for i in _expand_items(items) if i.strip()))
        if len(items) > 1:
            return Seq(opener, closer, tuple(parse(i, _level + 1) for i in items))
        return Atom(s)
    ratio = split_top(s, ":")
    if len(ratio) > 1 and all(p.strip() for p in ratio):
        t = _time(s)
        return t if t is not None else Ratio(tuple(parse(p, _level + 1) for p in ratio))
    pm = expand_pm(s)
    if pm is not None and len(pm) > 1:
        return Seq("", "", tuple(parse(p, _level + 1) for p in pm))
    return Atom(s)


def _expand_items(items: list[str]) -> list[str]:
    r"""List or set items with each ``a \pm b`` replaced by its two values."""
    out: list[str] = []
    for i in items:
        out += expand_pm(i) or [i]
    return out


def _approx(s: str, level: int) -> Node:
    """``x = \\frac13 \\approx 0.33``: the exact value before ``\\approx``; ``x \\approx 11``: the value after."""
    before, after = s.split("\\approx", 1)
    before = before.strip()
    last = split_top(before, "=")[-1].strip() if before else ""
    if last and not name_lhs(last):
        return parse(before, level + 1)
    return parse(f"{before}={after}" if before else after, level + 1)


def _assignments_as_tuple(node: Node) -> Node:
    """``p=5,q=2`` (one solution of several) -> the tuple ``(5,2)``."""
    if isinstance(node, Seq) and not node.open and all(isinstance(i, Equation) and name_lhs(i.lhs) for i in node.items):
        return Seq("(", ")", tuple(i.rhs for i in node.items))  # type: ignore[union-attr]
    return node


def _merge_inequalities(texts: list[str]) -> Node | None:
    """``x<1, x>4`` (written "x<1 or x>4") -> the union of the two intervals, when all are about one variable."""
    found = [inequality(t.strip()) for t in texts]
    if not all(found) or len({v for v, _ in found}) != 1:  # type: ignore[misc]
        return None
    parts: list[Node] = []
    for _, node in found:  # type: ignore[misc]
        parts += list(node.parts) if isinstance(node, Union) else [node]
    return Union(tuple(parts))


# ---- intervals as numbers, for merging ------------------------------------------------------------------------


def endpoint(text: str) -> Fraction | float | None:
    """An interval end as a number: exact for plain numbers, +-inf for infinities; None when symbolic."""
    from .numbers import parse_number

    t = text.strip()
    if t in _INF:
        return float("inf")
    if t.startswith("-") and t[1:] in _INF:
        return float("-inf")
    n = parse_number(t)
    return n.value if n is not None else None


def merge_intervals(parts: tuple[Node, ...]) -> tuple[Node, ...]:
    """Touching or overlapping intervals with numeric ends merged: ``[1,2]\\cup[2,3]`` -> ``[1,3]``."""
    ivals, rest = [], []
    for p in parts:
        if (
            isinstance(p, Seq)
            and p.open in "(["
            and p.close in ")]"
            and len(p.items) == 2
            and all(isinstance(x, Atom) and endpoint(x.text) is not None for x in p.items)
        ):
            lo, hi = (endpoint(x.text) for x in p.items)  # type: ignore[union-attr]
            ivals.append([lo, p.open == "[", hi, p.close == "]", p.items[0], p.items[1]])
        else:
            rest.append(p)
    ivals.sort(key=lambda v: (v[0], not v[1]))
    merged: list[list] = []
    for iv in ivals:
        if merged:
            last = merged[-1]
            touching = iv[0] < last[2] or (iv[0] == last[2] and (iv[1] or last[3]))
            if touching:
                if iv[2] > last[2] or (iv[2] == last[2] and iv[3]):
                    last[2], last[3], last[5] = iv[2], iv[3] or (iv[2] == last[2] and last[3]), iv[5]
                continue
        merged.append(list(iv))
    out: list[Node] = [Seq("[" if v[1] else "(", "]" if v[3] else ")", (v[4], v[5])) for v in merged]
    return tuple(out + rest)
