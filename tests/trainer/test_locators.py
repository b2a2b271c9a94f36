"""Locator building blocks: exact arithmetic checking and judge-reply parsing, as tables."""

from __future__ import annotations

import json

import pytest

from stepdpo_bench.locators.judge_parse import parse_verdicts
from stepdpo_bench.locators.symbolic import check_step, evaluate, locate
from stepdpo_bench.tasks import arith

STEPS = [
    ("Step 1: 12 + 5 = 17", True),
    ("Step 1: 12 + 5 = 18", False),
    ("Step 2: 21 + 5 = 21", False),
    ("Step 3: 7 * 8 = 56", True),
    ("Step 3: 7 x 8 = 56", True),
    ("Step 3: 7 × 8 = 54", False),
    ("She pays 3 * $4 = $12 for the pens.", True),
    ("Total: $1,200 / 4 = $300.", True),
    ("Total: 1,200 / 4 = 3,000", False),
    ("So (3 + 4) * 2 = 14 apples.", True),
    ("So 3 + 4 * 2 = 14 apples.", False),
    ("Half of it: 7 / 2 = 3.5", True),
    ("A third: 7 / 3 = 2.33", True),
    ("A third: 7 / 3 = 2.3", True),
    ("A third: 7 / 3 = 2.4", False),
    ("Then 10 - 15 = -5", True),
    ("She sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.", True),
    ("She makes 9 * 2 = $<<9*2=18>>18 every day.", True),
    ("She makes <<9*2=19>>19 dollars.", False),
    ("Let x be the number of pens.", None),
    ("So x + 2 = 7, hence x = 5.", None),
    ("The answer is: 17", None),
    ("Step 1: 2 + 2 = 4 and 3 + 3 = 7", False),
    ("Step 1: 5 / 0 = 1", None),
    ("Step 1: " + " + ".join(["1"] * 80) + " = 80", None),  # too long to check: left alone, not slow
]


@pytest.mark.parametrize(("step", "ok"), STEPS, ids=[s[:30] for s, _ in STEPS])
def test_check_step(step, ok):
    assert check_step(step).ok is ok


def test_evaluate_is_exact_and_never_runs_code():
    assert evaluate("1/3 + 1/3 + 1/3") == 1
    assert evaluate("-(2 - 5) * 4") == 12
    for bad in ("__import__('os')", "2 ** 10", "1 +", "(1 + 2"):
        with pytest.raises(ValueError):
            evaluate(bad)


def test_locate_on_arith_against_the_exact_truth():
    """Corrupt one step of true arith solutions: the symbolic locator finds exactly that step."""
    found = 0
    for k, p in enumerate(arith.generate("test", 60).problems):
        steps = list(p.steps)
        bad = k % len(steps)
        lhs, rhs = steps[bad].split(" = ")
        steps[bad] = f"{lhs} = {int(rhs) + 1 + k % 3}"
        loc = locate(steps)
        assert loc.step == bad and loc.confidence == 1.0, (steps, loc)
        found += 1
    assert found == 60
    assert locate(list(arith.generate("test", 1).problems[0].steps)).step is None


REPLIES = [
    ("Step 1: correct\nStep 2: correct\nStep 3: incorrect", 2),
    ("**Step 1:** Correct\n**Step 2:** **Incorrect** — 21 + 5 is 26", 1),
    ("Step 1 - Correct\nStep 2 - Neutral\nStep 3 - Incorrect", 2),
    ("- Step 1 (correct)\n- Step 2 (neutral)\n- Step 3 (wrong)", 2),
    ("Step 1 is correct. Step 2 is incorrect because 3*4=12.", 1),
    ("Step 1: neutral\nStep 2: neutral\nStep 3: correct", None),  # neutral is not an error
    ("Analysis...\nThe first incorrect step is Step 4.", 3),
    ("Step 1: Correct\nStep 2: Verdict: incorrect", 1),
    ("STEP 2: INCORRECT", 1),
    ("All steps are correct.", None),
    ("Step 1: correct\nStep 2: correct", None),
]


@pytest.mark.parametrize(("reply", "first"), REPLIES, ids=[r[:30] for r, _ in REPLIES])
def test_judge_replies(reply, first):
    r = parse_verdicts(reply)
    assert r.parsed and r.first_incorrect == first, r


def test_unparseable_and_contradictory_replies_are_reported_not_guessed():
    for junk in ("", "I think the solution has some issues.", json.dumps({"verdict": "bad"})):
        r = parse_verdicts(junk)
        assert not r.parsed and r.first_incorrect is None and r.note == "no verdict could be read"
    r = parse_verdicts("Step 2: incorrect\nThe first incorrect step is Step 3.")
    assert r.first_incorrect is None and r.note.startswith("contradiction")
