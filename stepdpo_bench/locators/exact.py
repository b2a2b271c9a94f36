"""The ``exact`` locator: a task that knows each step's truth (``arith``) judges every step exactly.

An ``arith`` solution's path is forced: step k applies the k-th sentence's operation to the running value.  A
step is correct when it does exactly that to the value the solution itself carried forward (so the steps after a
first error are judged on their own terms: ``7 + 3 = 10`` after a wrong ``4 + 2 = 7`` is a correct step), and
the first wrong step is ``arith.first_wrong_step``'s, which also catches a solution that stops early or states an
answer its steps do not give.  No model, no judge: the truth every other locator is measured against.
"""

from __future__ import annotations

import re

from ..tasks.arith import first_wrong_step
from ..tasks.base import Problem
from .base import CORRECT, WRONG, StepVerdicts

_EQ = re.compile(r"(-?\d+)\s*([-+*])\s*(-?\d+)\s*=\s*(-?\d+)")
_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def has_truth(problem: Problem) -> bool:
    """Whether the problem carries step truth this locator can use (every reference step an equation)."""
    return bool(problem.steps) and all(_EQ.search(s) for s in problem.steps or ())


def verdicts(problem: Problem, steps: list[str]) -> StepVerdicts:
    truth = [m.groups() for s in problem.steps or () if (m := _EQ.search(s))]
    out: list[str] = []
    running = int(truth[0][0]) if truth else None
    for i, step in enumerate(steps):
        m = _EQ.search(step)
        if i >= len(truth) or m is None:
            out.append(WRONG)  # a step the problem has no operation for, or one that states no operation
            continue
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        ok = a == running and op == truth[i][1] and b == int(truth[i][2]) and c == _APPLY[op](a, b)
        out.append(CORRECT if ok else WRONG)
        running = c  # carried forward: the next step is judged from the value this one claimed
    first = first_wrong_step(problem, steps)
    if first is not None:
        out[first] = WRONG  # stopped early, or an answer the steps do not give: the step that concluded
    evidence = ""
    if first is not None:
        want = " ".join(truth[first][:3]) + f" = {truth[first][3]}" if first < len(truth) else "no such step"
        evidence = f"step {first + 1}: the problem's step is {want}"
    return StepVerdicts.of(out, evidence)  # before ``first`` every step equals the truth, so the two agree on it
