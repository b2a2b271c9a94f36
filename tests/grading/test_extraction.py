from __future__ import annotations

import pytest

from stepdpo_bench.grading import boxed_contents, extract, extract_answer, extract_gold, grade

from .cases import EXTRACTION, GOLD


@pytest.mark.parametrize(("completion", "task", "expected"), EXTRACTION, ids=[repr(c)[:50] for c, *_ in EXTRACTION])
def test_extract_answer(completion, task, expected):
    assert extract_answer(completion, task) == expected


@pytest.mark.parametrize(("raw", "task", "expected"), GOLD, ids=[repr(r)[:40] for r, *_ in GOLD])
def test_extract_gold(raw, task, expected):
    assert extract_gold(raw, task) == expected


def test_all_boxes_are_kept():
    ex = extract(r"try \boxed{1}, no: \boxed{\frac{2}{3}}", "math")
    assert ex.candidates == ["1", r"\frac{2}{3}"]
    assert ex.answer == r"\frac{2}{3}"
    assert ex.method == "boxed"


def test_nested_and_escaped_braces():
    assert boxed_contents(r"\boxed{\{1, \{2\}\}}") == [r"\{1, \{2\}\}"]
    assert boxed_contents(r"\boxed{\frac{a}{b^{2}}} \boxedx{3}") == [r"\frac{a}{b^{2}}"]


def test_no_last_number_fallback_for_math_only_a_stated_value():
    """gsm8k takes the last number anywhere; math only the value the last sentence states, never scratch work."""
    assert extract("so 3 + 4 = 7 and we are done, 12 left", "math").answer is None
    assert extract("3 + 4 = 7. Then we add 5.", "math").answer is None
    assert extract("We add 5 and get 12. Thank you!", "math").answer is None  # a pleasantry ends the text
    ex = extract("Adding up, the sum is 15.", "math")
    assert (ex.answer, ex.method) == ("15", "last-number")
    assert extract("the sum is 15, then 3 more", "gsm8k").answer == "3"


def test_gold_list_must_have_one_item():
    with pytest.raises(ValueError, match="one-element"):
        extract_gold(["1", "2"], "gsm8k")


def test_grade_combines_both():
    g = grade(r"... so $\boxed{\dfrac{1}{2}}$.", "0.5")
    assert g.correct and g.pred == r"\dfrac{1}{2}" and g.method == "boxed"
    g = grade("I am not sure.", "0.5")
    assert not g.correct and g.pred is None and g.reason == "no answer extracted"
