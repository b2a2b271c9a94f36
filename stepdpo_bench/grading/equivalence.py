"""Is a predicted final answer the gold answer?  Structure first, then numbers, then (bounded) symbolic math.

``compare(pred, gold, task, symbolic=False, rules=STRICT)`` is the pure decision procedure.  With
``symbolic=False`` it never imports sympy and returns None when only symbolic math could decide; the public
``is_equivalent`` then hands the pair to a worker process that runs ``compare(..., symbolic=True)`` under a hard
time and memory limit.  ``rules`` say whether the problem allows rounding (numbers.Rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .guards import explosive
from .normalize import THOUSANDS, choice_letters, is_list_text, normalize, normalize_with_unit
from .numbers import STRICT, Rules, numbers_equal, parse_number
from .structures import (
    Atom,
    Equation,
    Matrix,
    Node,
    Ratio,
    Seq,
    Time,
    Union,
    merge_intervals,
    name_lhs,
    parse,
)

MAX_ANSWER_CHARS = 2000  # an "answer" longer than this is not a final answer
MAX_ITEMS = 64  # elements of a tuple/set compared pairwise

_BASE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z' -]*$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


@dataclass(frozen=True)
class Verdict:
    """The grader's judgement: truthy when equivalent, with a human-readable reason."""

    equal: bool
    reason: str

    def __bool__(self) -> bool:
        return self.equal


class _Undecided(Exception):
    """Raised inside the fast path when only symbolic math can decide."""


def _base_value(m: re.Match[str]) -> int | None:
    base = int(m.group(2))
    if not 2 <= base <= 36:
        return None
    try:
        return int(m.group(1), base)
    except ValueError:
        return None


class _Comparer:
    def __init__(self, symbolic: bool, rules: Rules):
        self.symbolic = symbolic
        self.rules = rules

    # ---- leaves -------------------------------------------------------------------------------------------
    def atoms(self, p: str, g: str) -> Verdict:
        if p == g:
            return Verdict(True, "exact match after normalisation")
        pn, gn = parse_number(p), parse_number(g)
        if pn is not None and gn is not None:
            return Verdict(*numbers_equal(pn, gn, self.rules))
        pb, gb = _BASE.match(p), _BASE.match(g)
        if pb and gb:
            pv, gv = _base_value(pb), _base_value(gb)
            ok = pv is not None and pv == gv
            return Verdict(ok, f"base-{pb.group(2)} {pb.group(1)} vs base-{gb.group(2)} {gb.group(1)}")
        if pb or gb:
            based, plain = (pb, g) if pb else (gb, p)
            assert based is not None
            if based.group(1) == plain:
                return Verdict(True, "same digits; base subscript omitted")
            return Verdict(False, f"digits differ from base-{based.group(2)} {based.group(1)}")
        if _WORDS.match(p) and _WORDS.match(g) and (len(p) > 1 or len(g) > 1):
            ok = p.lower().replace(" ", "") == g.lower().replace(" ", "")
            return Verdict(ok, "text answers " + ("match" if ok else "differ"))
        for side in (p, g):
            why = explosive(side)
            if why:
                return Verdict(
                    False, f"not shown equal: {'prediction' if side is p else 'gold'} is {why}, too large to evaluate"
                )
        return self._symbolic(p, g)

    def _symbolic(self, p: str, g: str) -> Verdict:
        if not self.symbolic:
            raise _Undecided
        from .symbolic import expressions_equal  # imported only in worker processes

        return Verdict(*expressions_equal(p, g, self.rules))

    # ---- shapes -------------------------------------------------------------------------------------------
    def nodes(self, p: Node, g: Node) -> Verdict:
        # "x = 5", "(p,q) = (3,2)", "AB = 4", "5 \times 6 = 30" against a bare value (either way round): the value
        if isinstance(p, Equation) and not isinstance(g, Equation) and _drops(p):
            return self.nodes(p.rhs, g)
        if isinstance(g, Equation) and not isinstance(p, Equation) and _drops(g):
            return self.nodes(p, g.rhs)
        p, g = _values_of_assignments(p, g), _values_of_assignments(g, p)
        if type(p) is not type(g):
            return self._cross(p, g)
        if isinstance(p, Atom):
            return self.atoms(p.text, g.text)  # type: ignore[union-attr]
        if isinstance(p, Equation):
            return self._equations(p, g)  # type: ignore[arg-type]
        if isinstance(p, Union):
            return self._unordered(merge_intervals(p.parts), merge_intervals(g.parts), "union")  # type: ignore[union-attr]
        if isinstance(p, Matrix):
            pr, gr = p.rows, g.rows  # type: ignore[union-attr]
            if len(pr) != len(gr) or any(len(a) != len(b) for a, b in zip(pr, gr, strict=True)):
                return Verdict(False, "matrix shapes differ")
            return self._ordered(tuple(x for r in pr for x in r), tuple(x for r in gr for x in r), "matrix")
        if isinstance(p, Time):
            ok = p.minutes == g.minutes  # type: ignore[union-attr]
            return Verdict(ok, "times of day " + ("match" if ok else "differ"))
        if isinstance(p, Ratio):
            return self._ratios(p.items, g.items)  # type: ignore[union-attr]
        return self._seqs(p, g)  # type: ignore[arg-type]

    def _cross(self, p: Node, g: Node) -> Verdict:
        """Different shapes that can still agree: a vector as a tuple vs a one-column matrix; a union that merges
        into one interval; a ratio vs its value; a matrix expression vs a matrix (symbolic)."""
        for vec, mat in ((p, g), (g, p)):
            if isinstance(vec, Seq) and isinstance(mat, Matrix) and vec.open in ("(", "["):
                cells = tuple(x for r in mat.rows for x in r)
                one_line = len(mat.rows) == 1 or all(len(r) == 1 for r in mat.rows)
                if one_line and (vec.open == "(" or len(vec.items) > 2):
                    return self._ordered(vec.items, cells, "vector")
        for u, other in ((p, g), (g, p)):
            if isinstance(u, Union) and not isinstance(other, Union):
                merged = merge_intervals(u.parts)
                if len(merged) == 1:
                    return self.nodes(merged[0], other) if u is p else self.nodes(other, merged[0])
        for r, other in ((p, g), (g, p)):
            if isinstance(r, Ratio) and isinstance(other, Atom) and len(r.items) == 2:
                value = _ratio_value(r)
                on = parse_number(other.text)
                if value is not None and on is not None:
                    return Verdict(
                        value == on.value, "ratio " + ("equals" if value == on.value else "differs from") + " the value"
                    )
        if (
            (isinstance(p, Matrix) or isinstance(g, Matrix))
            and isinstance(p, Atom | Matrix)
            and isinstance(g, Atom | Matrix)
        ):
            raise _MatrixText  # a matrix against A + B or 2A: the symbolic layer compares the texts
        return Verdict(False, f"different shapes: {_shape(p)} vs {_shape(g)}")

    def _equations(self, p: Equation, g: Equation) -> Verdict:
        if normalize(p.lhs) == normalize(g.lhs):
            return self.nodes(p.rhs, g.rhs)
        if isinstance(p.rhs, Atom) and isinstance(g.rhs, Atom):
            if not self.symbolic:
                raise _Undecided
            from .symbolic import equations_equal

            return Verdict(*equations_equal(p.lhs, p.rhs_text, g.lhs, g.rhs_text))
        return Verdict(False, "equations differ")

    def _seqs(self, p: Seq, g: Seq) -> Verdict:
        if p.unordered and g.unordered:
            return self._unordered(p.items, g.items, "set")
        if g.open == "" and (p.open, p.close) in (("(", ")"), ("[", "]")) and len(p.items) == len(g.items) > 1:
            # (251, 7) against the bare gold 251,7: the gold lists its items (in any order); the other way round,
            # 1,2 against (1,2), stays wrong (the gold may be an interval or an ordered pair)
            return self._unordered(p.items, g.items, "list")
        if (p.open, p.close) != (g.open, g.close):
            lists = {p.open + p.close, g.open + g.close} <= {"()", "[]"} and len(p.items) == len(g.items) > 2
            if not lists:  # (4,5,6) vs [4,5,6] is one vector; (1,2) vs [1,2] are different intervals
                return Verdict(
                    False, f"brackets differ: {p.open or '·'}…{p.close or '·'} vs {g.open or '·'}…{g.close or '·'}"
                )
        return self._ordered(p.items, g.items, "tuple" if p.open == "(" else "interval/list")

    def _ratios(self, ps: tuple[Node, ...], gs: tuple[Node, ...]) -> Verdict:
        if len(ps) != len(gs):
            return Verdict(False, f"ratio: {len(ps)} vs {len(gs)} parts")
        return self._ordered(ps, gs, "ratio")

    def _ordered(self, ps: tuple[Node, ...], gs: tuple[Node, ...], what: str) -> Verdict:
        if len(ps) != len(gs):
            return Verdict(False, f"{what}: {len(ps)} vs {len(gs)} elements")
        if len(ps) > MAX_ITEMS:
            return Verdict(False, f"{what}: more than {MAX_ITEMS} elements")
        undecided = False
        for i, (a, b) in enumerate(zip(ps, gs, strict=True)):
            try:
                v = self.nodes(a, b)
            except _Undecided:
                undecided = True
                continue
            if not v:
                if what == "ratio" and _proportional(ps, gs):
                    return Verdict(True, "ratio: proportional parts")
                return Verdict(False, f"{what} element {i + 1}: {v.reason}")
        if undecided:
            raise _Undecided
        return Verdict(True, f"{what}: all {len(ps)} elements equal")

    def _unordered(self, ps: tuple[Node, ...], gs: tuple[Node, ...], what: str) -> Verdict:
        ps, gs = tuple(dict.fromkeys(ps)), tuple(dict.fromkeys(gs))  # a repeated solution is one solution
        if len(ps) != len(gs):
            return Verdict(False, f"{what}: {len(ps)} vs {len(gs)} elements")
        if len(ps) > MAX_ITEMS:
            return Verdict(False, f"{what}: more than {MAX_ITEMS} elements")
        unused = list(gs)
        undecided = False
        for a in ps:
            hit = None
            for j, b in enumerate(unused):
                try:
                    if self.nodes(a, b):
                        hit = j
                        break
                except _Undecided:
                    undecided = True
            if hit is None:
                if undecided:
                    raise _Undecided
                return Verdict(False, f"{what}: no counterpart for an element")
            unused.pop(hit)
        return Verdict(True, f"{what}: same {len(ps)} elements in any order")


class _MatrixText(Exception):
    """A matrix against a matrix expression (``A + B``, ``2A``): only the symbolic layer can compare the texts."""


def _values_of_assignments(node: Node, other: Node) -> Node:
    """``a=2, b=5`` against a value list: the values, as a tuple when ``other`` is a tuple and the names differ
    (``(2,5)``), else as a list (``x=1, x=2`` ~ ``1, 2``)."""
    if isinstance(other, Equation) or not isinstance(node, Seq) or node.open:
        return node
    if not node.items or not all(isinstance(i, Equation) and name_lhs(i.lhs) for i in node.items):
        return node
    if isinstance(other, Seq) and other.items and all(isinstance(i, Equation) for i in other.items):
        return node
    names = [normalize(i.lhs) for i in node.items]  # type: ignore[union-attr]
    values = tuple(i.rhs for i in node.items)  # type: ignore[union-attr]
    if isinstance(other, Seq) and other.open in ("(", "[") and len(set(names)) == len(names):
        return Seq(other.open, other.close, values)  # a=3, b=3 against (3,3) or [3,3]
    return Seq("", "", values)


def _letters(t: str) -> bool:
    return bool(re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", t)))


def _drops(eq: Equation) -> bool:
    """Is the left side of ``lhs = value`` something a bare-value answer does not need: a name (``x``, ``(p,q)``,
    ``AB``), or a computation without variables whose result is a value too (``5 \times 6 \times 4 = 120``, but
    never ``7 = 11a+c``)?"""
    if name_lhs(eq.lhs):
        return True
    return bool(eq.lhs.strip()) and not _letters(eq.lhs) and not _letters(eq.rhs_text)


def _ratio_value(r: Ratio) -> Fraction | None:
    a, b = (parse_number(x.text) if isinstance(x, Atom) else None for x in r.items)
    if a is None or b is None or b.value == 0:
        return None
    return a.value / b.value


def _proportional(ps: tuple[Node, ...], gs: tuple[Node, ...]) -> bool:
    """Ratios of plain numbers with the same proportions (2:4 ~ 1:2); never through a zero part."""
    pv = [parse_number(x.text) if isinstance(x, Atom) else None for x in ps]
    gv = [parse_number(x.text) if isinstance(x, Atom) else None for x in gs]
    if any(v is None or v.value == 0 for v in pv + gv):
        return False
    k = pv[0].value / gv[0].value  # type: ignore[union-attr]
    return all(a.value == k * b.value for a, b in zip(pv, gv, strict=True))  # type: ignore[union-attr]


def _shape(n: Node) -> str:
    if isinstance(n, Seq):
        return {"(": "tuple", "{": "set", "": "list", "[": "interval/list"}.get(n.open, "interval")
    return type(n).__name__.lower()


def _decimal_comma(pred: str, gold: str) -> Verdict | None:
    """``1000,99`` against ``1000.99`` (either way round): a decimal comma, when one side is a decimal with the
    same digits and the comma text is not a thousands grouping; never when the other side is a list."""
    for a, b in ((pred, gold), (gold, pred)):
        a, b = a.strip().strip("$"), normalize(b)
        if _DECIMAL_COMMA.match(a) and not THOUSANDS.fullmatch(a):
            nb = parse_number(b)
            if nb is not None and nb.decimals:
                na = parse_number(a.replace(",", "."))
                if na is not None and na.value == nb.value:
                    return Verdict(True, "numeric: decimal comma")
    return None


def compare(
    pred: str | None, gold: str | None, task: str = "math", symbolic: bool = False, rules: Rules = STRICT
) -> Verdict | None:
    """Decide equivalence.  Returns None only when ``symbolic`` is False and symbolic math is needed."""
    if pred is None or not str(pred).strip():
        return Verdict(False, "no answer extracted")
    if gold is None or not str(gold).strip():
        return Verdict(False, "empty gold answer")
    if len(pred) > MAX_ANSWER_CHARS:
        return Verdict(False, f"prediction longer than {MAX_ANSWER_CHARS} characters")
    listy = is_list_text(gold)
    p, p_unit = normalize_with_unit(pred, list_gold=listy)
    g, g_unit = normalize_with_unit(gold, list_gold=listy)  # a list gold's own commas separate its items too
    if not p:
        return Verdict(False, "prediction is empty after normalisation")
    if p_unit and g_unit and p_unit != g_unit and "%" not in (p_unit, g_unit):
        return Verdict(False, f"units differ: {p_unit} vs {g_unit}")
    if p == g:
        return Verdict(True, "exact match after normalisation")
    gc = choice_letters(g)
    if gc is not None:
        pc = choice_letters(p)
        if pc is None:
            return Verdict(False, f"gold is choice {gc}; prediction is not a choice letter")
        return Verdict(pc == gc, f"choice {pc} vs {gc}")
    comma = _decimal_comma(pred, gold)
    if comma is not None:
        return comma
    try:
        return _Comparer(symbolic, rules).nodes(parse(p), parse(g))
    except _Undecided:
        return None
    except _MatrixText:
        if not symbolic:
            return None
        from .symbolic import expressions_equal

        return Verdict(*expressions_equal(p, g, rules))
    except RecursionError:
        return Verdict(False, "expression nested too deeply")
