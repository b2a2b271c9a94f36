"""The ``rollout`` locator: find the first step after which the policy can no longer reach the right answer.

For a wrong solution with n steps, let s(i) be the fraction of m continuations from the prefix of its first i
steps that end in the gold answer.  s(n) = 0 (the full solution is wrong).  Assuming solvability only drops as
wrong steps pile up, binary search finds the smallest i with s(i) = 0 in about m·log2(n) samples instead of the
m·n of a linear scan; the error is step i (1-based), provided the drop from s(i-1) to s(i) is statistically clear
(one-sided Fisher exact test at ``alpha``), else nothing is located.  s(0) = 0 means the policy cannot solve the
problem at all: nothing to locate either.

Rollouts measure whether a prefix is still *solvable by this policy*, not whether a step is *correct*: a correct
but unhelpful step, or a lucky wrong one, moves the estimate.  ``bench/locate.py`` reports the agreement with the
exact truth on ``arith``.  All active solutions advance in lockstep, so every round is one batched sampler call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stepdpo_bench.grading import grade_batch
from stepdpo_bench.locators import Location

from .context import Pipeline, Solution, initial_text


@dataclass
class _Search:
    sol: Solution
    lo: int = 0  # s(lo) > 0 once measured
    hi: int = 0  # s(hi) == 0
    counts: dict[int, int] = field(default_factory=dict)  # prefix length -> successes out of m
    done: Location | None = None


def _drop_p(k: int, m: int) -> float:
    """One-sided Fisher exact p-value for k/m successes before vs 0/m after: could the drop be chance?"""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k, m - k], [0, m]], alternative="greater")[1])


def rollout_locate(pipe: Pipeline, sols: Sequence[Solution], m: int, alpha: float) -> list[Location]:
    searches = [_Search(s, 0, len(s.steps)) for s in sols]
    rounds = 0
    while active := [x for x in searches if x.done is None]:
        # the prefix to measure: 0 first, then the midpoint of the open interval
        probes = [(x, 0 if 0 not in x.counts else (x.lo + x.hi) // 2) for x in active]
        prompts, openings = [], []
        for x, i in probes:
            prompt, opening = pipe.prefix_prompt(pipe.problems[x.sol.problem_id], x.sol.steps[:i])
            prompts.append(prompt)
            openings.append(opening)
        outs = pipe.policy.generate(
            prompts, pipe.sampling(m, pipe.cfg.continuation_temperature, pipe.cfg.seed + 1000 + rounds)
        )
        rounds += 1
        texts, golds = [], []
        for (x, i), opening, cs in zip(probes, openings, outs, strict=True):
            before = initial_text(x.sol.steps[:i])
            texts += [before + opening + c.text for c in cs]
            golds += [x.sol.gold] * len(cs)
        grades = iter(grade_batch(texts, golds, pipe.task.convention))
        for (x, i), cs in zip(probes, outs, strict=True):
            x.counts[i] = sum(next(grades).correct for _ in cs)
            if x.counts[i] > 0:
                x.lo = i
            else:
                x.hi = i
            if x.counts.get(0) == 0:
                x.done = Location(
                    None,
                    0.0,
                    f"0/{m} continuations from the start reach the answer: the policy cannot solve this problem",
                    "rollout",
                    "unclear",
                    m,
                )
            elif x.hi - x.lo <= 1:
                x.done = _conclude(x, m, alpha)
    return [x.done for x in searches if x.done is not None]


def _conclude(x: _Search, m: int, alpha: float) -> Location:
    k = x.counts[x.lo]
    spent = m * len(x.counts)
    trail = ", ".join(f"s({i})={c}/{m}" for i, c in sorted(x.counts.items()))
    p = _drop_p(k, m)
    if p > alpha:
        return Location(
            None, 1 - p, f"drop at step {x.hi} not clear (p={p:.3f} > {alpha}); {trail}", "rollout", "unclear", spent
        )
    return Location(
        x.hi - 1, 1 - p, f"solvable before step {x.hi}, not after (p={p:.3f}); {trail}", "rollout", "located", spent
    )
