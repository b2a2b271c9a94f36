"""Grading: extract a final answer, decide whether it equals the gold answer.

Public API (other parts of the project and external checks import exactly these names)::

    extract_answer(completion, task="math") -> str | None
    is_equivalent(pred, gold, task="math") -> Verdict          # truthy; .reason says why
    is_equivalent_batch(pairs, task="math") -> list[Verdict]   # parallel across worker processes
    grade(completion, gold, task="math") -> Grade              # both steps at once

The cases in ``tests/grading/`` are the specification.  Bump ``GRADER_VERSION`` whenever a verdict can change,
so stored runs know they were graded by an older grader (``stepdpo-bench regrade``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .equivalence import Verdict, compare
from .extraction import TASKS, Extraction, boxed_contents, extract, extract_answer, extract_gold
from .isolation import DEFAULT_TIMEOUT, GraderPool, GraderWorkerError, shared_pool

GRADER_VERSION = "1.0.0"

__all__ = [
    "DEFAULT_TIMEOUT",
    "GRADER_VERSION",
    "TASKS",
    "Extraction",
    "Grade",
    "GraderPool",
    "GraderWorkerError",
    "Verdict",
    "boxed_contents",
    "extract",
    "extract_answer",
    "extract_gold",
    "grade",
    "grade_batch",
    "is_equivalent",
    "is_equivalent_batch",
]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task convention {task!r}; expected one of {', '.join(TASKS)}")


def is_equivalent(pred: str | None, gold: str | None, task: str = "math", *, timeout: float | None = None) -> Verdict:
    """Is ``pred`` the same answer as ``gold`` under ``task``'s convention?  Never hangs: symbolic work runs in a
    worker process with a hard ``timeout`` (seconds, default ``DEFAULT_TIMEOUT``)."""
    _check_task(task)
    verdict = compare(pred, gold, task)
    if verdict is not None:
        return verdict
    res = shared_pool().map([{"pred": pred, "gold": gold, "task": task}], timeout)[0]
    return Verdict(bool(res["equal"]), str(res["reason"]))


def is_equivalent_batch(
    pairs: Sequence[tuple[str | None, str | None]],
    task: str = "math",
    *,
    timeout: float | None = None,
    pool: GraderPool | None = None,
    on_result: Callable[[int, Verdict], None] | None = None,
) -> list[Verdict]:
    """Grade many (pred, gold) pairs: the fast path in this process, the symbolic rest in parallel workers."""
    _check_task(task)
    out: list[Verdict | None] = []
    slow: list[int] = []
    for i, (pred, gold) in enumerate(pairs):
        v = compare(pred, gold, task)
        out.append(v)
        if v is None:
            slow.append(i)
        elif on_result is not None:
            on_result(i, v)
    if slow:
        payloads = [{"pred": pairs[i][0], "gold": pairs[i][1], "task": task} for i in slow]

        def done(k: int, res: dict) -> None:
            v = Verdict(bool(res["equal"]), str(res["reason"]))
            out[slow[k]] = v
            if on_result is not None:
                on_result(slow[k], v)

        (pool or shared_pool()).map(payloads, timeout, on_result=done)
    return [v if v is not None else Verdict(False, "not graded") for v in out]


@dataclass(frozen=True)
class Grade:
    """Extraction and verdict for one completion."""

    pred: str | None
    correct: bool
    reason: str
    method: str


def grade(completion: str, gold: str, task: str = "math", *, timeout: float | None = None) -> Grade:
    """Extract the final answer of ``completion`` and compare it with ``gold``."""
    ex = extract(completion, task)
    v = (
        is_equivalent(ex.answer, gold, task, timeout=timeout)
        if ex.answer is not None
        else Verdict(False, "no answer extracted")
    )
    return Grade(ex.answer, v.equal, v.reason, ex.method)


def grade_batch(
    completions: Sequence[str], golds: Sequence[str], task: str = "math", *, timeout: float | None = None
) -> list[Grade]:
    """``grade`` over many completions, the symbolic comparisons in parallel."""
    extractions = [extract(c, task) for c in completions]
    verdicts = is_equivalent_batch(
        [(e.answer, g) for e, g in zip(extractions, golds, strict=True)], task, timeout=timeout
    )
    return [Grade(e.answer, v.equal, v.reason, e.method) for e, v in zip(extractions, verdicts, strict=True)]
