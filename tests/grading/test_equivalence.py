"""The table in cases.py is the grader's specification; every row is checked here, one by one and in batch."""

from __future__ import annotations

import pytest

from stepdpo_bench.grading import Verdict, is_equivalent, is_equivalent_batch
from stepdpo_bench.grading.equivalence import compare

from .cases import (
    ALL_CASES,
    CHOICES,
    COMMAS,
    GSM8K,
    NEAR_MISSES,
    NORMALIZATION,
    NUMBERS,
    QUESTIONS,
    STRUCTURES,
    SYMBOLIC,
)


def _ids(rows):
    return [f"{t}:{p!r}~{g!r}" for p, g, t, _ in rows]


@pytest.mark.parametrize("table", [NORMALIZATION, NUMBERS, SYMBOLIC, STRUCTURES, NEAR_MISSES, CHOICES, GSM8K])
def test_tables_are_nonempty_and_mixed(table):
    """Every table is big enough and holds both verdicts: a table of only matches cannot catch a false positive."""
    assert len(table) >= 15
    expected = [e for *_, e in table]
    assert expected.count(True) >= 3 and expected.count(False) >= 3


def test_spec_size():
    assert len(ALL_CASES) >= 300
    assert sum(1 for *_, e in ALL_CASES if not e) >= 70  # plenty of near-misses


@pytest.mark.parametrize(("pred", "gold", "task", "expected"), ALL_CASES, ids=_ids(ALL_CASES))
def test_case(pred, gold, task, expected):
    v = is_equivalent(pred, gold, task)
    assert isinstance(v, Verdict)
    assert v.reason
    assert bool(v) is expected, v.reason


def test_batch_matches_single():
    for task in ("math", "gsm8k", "odyssey"):
        rows = [r for r in ALL_CASES if r[2] == task]
        got = is_equivalent_batch([(p, g) for p, g, _, _ in rows], task)
        assert [v.equal for v in got] == [e for *_, e in rows]


def test_batch_reports_each_result_once():
    rows = [r for r in ALL_CASES if r[2] == "math"][:40]
    seen: list[int] = []
    is_equivalent_batch([(p, g) for p, g, _, _ in rows], "math", on_result=lambda i, v: seen.append(i))
    assert sorted(seen) == list(range(len(rows)))


def test_fast_path_needs_no_sympy_for_plain_numbers():
    assert compare("0.5", r"\frac12") == Verdict(True, "numeric: 1/2 == 1/2")
    assert compare(r"\sqrt{8}", r"2\sqrt2") is None  # only symbolic math can decide: left to a worker


def test_equivalence_is_symmetric_on_exact_values():
    for p, g, t, e in ALL_CASES:
        if (p, g, t, e) in COMMAS:  # commas read by the gold's shape: asymmetric by design
            continue
        if t == "math" and e and "." not in p + g and "=" not in p + g:
            assert bool(is_equivalent(g, p, t)) == e, (p, g)


def test_none_and_unknown_task():
    assert not is_equivalent(None, "5")
    with pytest.raises(ValueError, match="unknown answer convention"):
        is_equivalent("5", "5", task="mmlu")


@pytest.mark.parametrize(
    ("pred", "gold", "question", "expected"), QUESTIONS, ids=[f"{p!r}~{g!r}" for p, g, *_ in QUESTIONS]
)
def test_question_rules(pred, gold, question, expected):
    """What the problem asks for (a rounding, a decimal, significant figures) decides whether a decimal counts,
    and the reason says so."""
    v = is_equivalent(pred, gold, question=question)
    assert bool(v) is expected, v.reason
    if "significant" in question and "numeric" in v.reason:
        assert "significant figure" in v.reason
