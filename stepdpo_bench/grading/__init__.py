"""Grading: extract a final answer, decide whether it equals the gold answer.

Public API (the names in ``__all__``; other parts of the project and outside tools import exactly these)::

    extract_answer(completion, convention="math") -> str | None
    extract(completion, convention="math") -> Extraction       # answer, method, candidates, group of boxes
    extract_gold(field, convention="math") -> str
    is_equivalent(pred, gold, convention="math", question=None) -> Verdict   # truthy; .reason says why
    is_equivalent_batch(pairs, convention="math", questions=None) -> list[Verdict]
    grade(completion, gold, convention="math", question=None) -> Grade       # extraction + verdict
    grade_batch(completions, golds, convention="math", questions=None) -> list[Grade]
    GRADER_VERSION, CONVENTIONS, METHODS, DEFAULT_TIMEOUT, Verdict, Grade, Extraction, GraderPool

``question`` (the problem text) lets the grader accept a rounded decimal when the problem asks for one ("to the
nearest tenth", "as a decimal"); ``lenient=True`` restores the old rule (any correctly rounded decimal) and is
recorded in runs.  The cases in ``tests/grading/`` are the specification.  Bump ``GRADER_VERSION`` whenever a
verdict can change, so stored runs know they were graded by an older grader (``stepdpo-bench regrade``).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .equivalence import Verdict, compare
from .extraction import METHODS, TASKS, Extraction, boxed_contents, extract, extract_answer, extract_gold
from .isolation import DEFAULT_TIMEOUT, GraderPool, GraderWorkerError, shared_pool
from .normalize import is_list_text
from .numbers import Rules, rounding_request

GRADER_VERSION = "2.1.0"
CONVENTIONS = TASKS  # answer conventions: math, gsm8k, odyssey, arith
BATCH_BUDGET = float(os.environ.get("STEPDPO_GRADER_BATCH_BUDGET", "0") or 0)  # 0: scaled to the batch

__all__ = [
    "CONVENTIONS",
    "DEFAULT_TIMEOUT",
    "GRADER_VERSION",
    "METHODS",
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


def _convention(convention: str, task: str | None) -> str:
    if task is not None:
        warnings.warn(
            "grading's task= is now convention= (an answer convention, not a task); task= goes in the next release",
            DeprecationWarning,
            stacklevel=3,
        )
        convention = task
    if convention not in TASKS:
        raise ValueError(f"unknown answer convention {convention!r}; expected one of {', '.join(TASKS)}")
    return convention


def rules_for(question: str | None, lenient: bool = False) -> Rules:
    """What the problem allows (rounding asked for, and to what precision), plus the lenient switch."""
    r = rounding_request(question)
    return Rules(r.rounding, r.decimals, lenient) if lenient else r


# Results of symbolic comparisons (timeouts included), keyed by the inputs: a run that repeats a pathological
# answer pays for it once, across batches too.
_CACHE: OrderedDict[tuple, Verdict] = OrderedDict()
_CACHE_MAX = 20_000
_cache_lock = threading.Lock()


def _cached(key: tuple) -> Verdict | None:
    with _cache_lock:
        v = _CACHE.get(key)
        if v is not None:
            _CACHE.move_to_end(key)
        return v


def _remember(key: tuple, v: Verdict) -> None:
    with _cache_lock:
        _CACHE[key] = v
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)


def is_equivalent(
    pred: str | None,
    gold: str | None,
    convention: str = "math",
    *,
    question: str | None = None,
    lenient: bool = False,
    timeout: float | None = None,
    task: str | None = None,
) -> Verdict:
    """Is ``pred`` the same answer as ``gold`` under the answer convention?  Never hangs: symbolic work runs in a
    worker process with a hard ``timeout`` (seconds, default ``DEFAULT_TIMEOUT``)."""
    convention = _convention(convention, task)
    return is_equivalent_batch([(pred, gold)], convention, questions=[question], lenient=lenient, timeout=timeout)[0]


def is_equivalent_batch(
    pairs: Sequence[tuple[str | None, str | None]],
    convention: str = "math",
    *,
    questions: Sequence[str | None] | None = None,
    lenient: bool = False,
    timeout: float | None = None,
    pool: GraderPool | None = None,
    on_result: Callable[[int, Verdict], None] | None = None,
    budget: float | None = None,
    task: str | None = None,
) -> list[Verdict]:
    """Grade many (pred, gold) pairs: the fast path in this process, the symbolic rest in parallel workers.

    Identical (pred, gold, rules) pairs are compared once; symbolic results are cached (timeouts too).  The
    symbolic part has an overall time ``budget`` (default: 30 s + 1 s per distinct symbolic pair, or
    ``STEPDPO_GRADER_BATCH_BUDGET``); pairs still undecided when it runs out are reported as timeouts.
    """
    convention = _convention(convention, task)
    qs = list(questions) if questions is not None else [None] * len(pairs)
    rules = [rules_for(q, lenient) for q in qs]
    out: list[Verdict | None] = [None] * len(pairs)
    slow: dict[tuple, list[int]] = {}
    limit_each = DEFAULT_TIMEOUT if timeout is None else timeout
    for i, (pred, gold) in enumerate(pairs):
        key = (pred, gold, convention, rules[i], limit_each)  # a timeout under 1 s says nothing about 30 s
        v = compare(pred, gold, convention, rules=rules[i])
        if v is None:
            v = _cached(key)
        if v is None:
            slow.setdefault(key, []).append(i)
            continue
        out[i] = v
        if on_result is not None:
            on_result(i, v)
    if slow:
        keys = list(slow)
        payloads = [{"pred": k[0], "gold": k[1], "task": k[2], "rules": asdict(k[3])} for k in keys]
        limit = budget or BATCH_BUDGET or 30.0 + 1.0 * len(keys)

        def done(k: int, res: dict) -> None:
            v = Verdict(bool(res["equal"]), str(res["reason"]))
            if not res.get("unsent"):
                _remember(keys[k], v)
            for i in slow[keys[k]]:
                out[i] = v
                if on_result is not None:
                    on_result(i, v)

        (pool or shared_pool()).map(payloads, timeout, on_result=done, budget=limit)
    return [v if v is not None else Verdict(False, "not graded") for v in out]


@dataclass(frozen=True)
class Grade:
    """Extraction and verdict for one completion."""

    pred: str | None
    correct: bool
    reason: str
    method: str


def grade(
    completion: str,
    gold: str,
    convention: str = "math",
    *,
    question: str | None = None,
    lenient: bool = False,
    timeout: float | None = None,
    task: str | None = None,
) -> Grade:
    """Extract the final answer of ``completion`` and compare it with ``gold``."""
    convention = _convention(convention, task)
    return grade_batch([completion], [gold], convention, questions=[question], lenient=lenient, timeout=timeout)[0]


def grade_batch(
    completions: Sequence[str],
    golds: Sequence[str],
    convention: str = "math",
    *,
    questions: Sequence[str | None] | None = None,
    lenient: bool = False,
    timeout: float | None = None,
    budget: float | None = None,
    task: str | None = None,
) -> list[Grade]:
    """``grade`` over many completions, the symbolic comparisons in parallel.

    A model that boxes each solution separately (``\\boxed{1} and \\boxed{2}``) is compared as the list of those
    boxes when the gold is a list; otherwise the last box is its answer.
    """
    convention = _convention(convention, task)
    t0 = time.monotonic()
    qs = list(questions) if questions is not None else [None] * len(completions)
    extractions = [extract(c, convention) for c in completions]
    jobs: list[tuple[str | None, str | None]] = []
    job_q: list[str | None] = []
    slots: list[list[tuple[int, str | None]]] = []
    for e, g, q in zip(extractions, golds, qs, strict=True):
        cands: list[str | None] = [e.answer]
        if e.group and g is not None and is_list_text(g):
            joined = ", ".join(e.group)
            cands = [joined] + ([e.answer] if e.answer != joined else [])
        slots.append([(len(jobs) + k, c) for k, c in enumerate(cands)])
        jobs += [(c, g) for c in cands]
        job_q += [q] * len(cands)
    left = None if budget is None else max(1.0, budget - (time.monotonic() - t0))
    verdicts = is_equivalent_batch(jobs, convention, questions=job_q, lenient=lenient, timeout=timeout, budget=left)
    out = []
    for e, slot in zip(extractions, slots, strict=True):
        if e.answer is None:
            out.append(Grade(None, False, "no answer extracted", e.method))
            continue
        best = next(((j, c) for j, c in slot if verdicts[j]), slot[0])
        j, cand = best
        out.append(Grade(cand, verdicts[j].equal, verdicts[j].reason, e.method))
    return out
