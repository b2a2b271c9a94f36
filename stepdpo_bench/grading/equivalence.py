"""Is a predicted final answer the gold answer?  Structure first, then numbers, then (bounded) symbolic math.

``compare(pred, gold, task, symbolic=False)`` is the pure decision procedure.  With ``symbolic=False`` it never
imports sympy and returns None when only symbolic math could decide; the public ``is_equivalent`` then hands the
pair to a worker process that runs ``compare(..., symbolic=True)`` under a hard time and memory limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import choice_letters, normalize
from .numbers import numbers_equal, parse_number
from .structures import Atom, Equation, Matrix, Node, Seq, Union, parse, simple_lhs

MAX_ANSWER_CHARS = 2000  # an "answer" longer than this is not a final answer
MAX_ITEMS = 64  # elements of a tuple/set compared pairwise

_BASE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z' -]*$")


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
    def __init__(self, symbolic: bool):
        self.symbolic = symbolic

    # ---- leaves -------------------------------------------------------------------------------------------
    def atoms(self, p: str, g: str) -> Verdict:
        if p == g:
            return Verdict(True, "exact match after normalisation")
        pn, gn = parse_number(p), parse_number(g)
        if pn is not None and gn is not None:
            return Verdict(*numbers_equal(pn, gn))
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
        if not self.symbolic:
            raise _Undecided
        from .symbolic import expressions_equal  # imported only in worker processes

        return Verdict(*expressions_equal(p, g))

    # ---- shapes -------------------------------------------------------------------------------------------
    def nodes(self, p: Node, g: Node) -> Verdict:
        # "x = 5" against a bare "5" (either way round): drop the name being assigned.
        if isinstance(p, Equation) and not isinstance(g, Equation) and simple_lhs(p.lhs):
            return self.nodes(p.rhs, g)
        if isinstance(g, Equation) and not isinstance(p, Equation) and simple_lhs(g.lhs):
            return self.nodes(p, g.rhs)
        if type(p) is not type(g):
            return self._cross(p, g)
        if isinstance(p, Atom):
            return self.atoms(p.text, g.text)  # type: ignore[union-attr]
        if isinstance(p, Equation):
            return self._equations(p, g)  # type: ignore[arg-type]
        if isinstance(p, Union):
            return self._unordered(p.parts, g.parts, "union")  # type: ignore[union-attr]
        if isinstance(p, Matrix):
            pr, gr = p.rows, g.rows  # type: ignore[union-attr]
            if len(pr) != len(gr) or any(len(a) != len(b) for a, b in zip(pr, gr, strict=True)):
                return Verdict(False, "matrix shapes differ")
            return self._ordered(tuple(x for r in pr for x in r), tuple(x for r in gr for x in r), "matrix")
        return self._seqs(p, g)  # type: ignore[arg-type]

    def _cross(self, p: Node, g: Node) -> Verdict:
        """Different shapes: only a vector written as a tuple vs a one-column/row matrix can still agree."""
        for vec, mat in ((p, g), (g, p)):
            if isinstance(vec, Seq) and isinstance(mat, Matrix) and vec.open == "(" and vec.close == ")":
                cells = tuple(x for r in mat.rows for x in r)
                if len(mat.rows) == 1 or all(len(r) == 1 for r in mat.rows):
                    return self._ordered(vec.items, cells, "vector")
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
        if (p.open, p.close) != (g.open, g.close):
            return Verdict(False, f"brackets differ: {p.open or '·'}…{p.close or '·'} vs {g.open or '·'}…{g.close}")
        return self._ordered(p.items, g.items, "tuple" if p.open == "(" else "interval/list")

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
                return Verdict(False, f"{what} element {i + 1}: {v.reason}")
        if undecided:
            raise _Undecided
        return Verdict(True, f"{what}: all {len(ps)} elements equal")

    def _unordered(self, ps: tuple[Node, ...], gs: tuple[Node, ...], what: str) -> Verdict:
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


def _shape(n: Node) -> str:
    if isinstance(n, Seq):
        return {"(": "tuple", "{": "set", "": "list", "[": "interval/list"}.get(n.open, "interval")
    return type(n).__name__.lower()


def compare(pred: str | None, gold: str | None, task: str = "math", symbolic: bool = False) -> Verdict | None:
    """Decide equivalence.  Returns None only when ``symbolic`` is False and symbolic math is needed."""
    if pred is None or not str(pred).strip():
        return Verdict(False, "no answer extracted")
    if gold is None or not str(gold).strip():
        return Verdict(False, "empty gold answer")
    if len(pred) > MAX_ANSWER_CHARS:
        return Verdict(False, f"prediction longer than {MAX_ANSWER_CHARS} characters")
    p, g = normalize(pred), normalize(gold)
    if not p:
        return Verdict(False, "prediction is empty after normalisation")
    if p == g:
        return Verdict(True, "exact match after normalisation")
    gc = choice_letters(g)
    if gc is not None:
        pc = choice_letters(p)
        if pc is None:
            return Verdict(False, f"gold is choice {gc}; prediction is not a choice letter")
        return Verdict(pc == gc, f"choice {pc} vs {gc}")
    try:
        return _Comparer(symbolic).nodes(parse(p), parse(g))
    except _Undecided:
        return None
    except RecursionError:
        return Verdict(False, "expression nested too deeply")
