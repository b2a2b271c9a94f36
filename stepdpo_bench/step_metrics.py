"""Step metrics of a run: how often its steps are right, and where its solutions first go wrong.

Every metric is a ratio over samples (or steps) that are clustered by problem: 16 samples of one problem are not
16 independent observations.  Estimates are pooled ratios (sum over problems of the numerator / of the
denominator); their standard errors are the cluster-robust (linearised) ones, so one problem answered many times
counts once in the uncertainty.  Shares get a Wilson interval at the effective sample size (n divided by the
design effect: honest near 0 and 1, where most of these shares live); the mean first-error step a normal one.

- ``step_accuracy``: correct steps / checked steps (unchecked steps: neither).
- ``checkable``: checked steps / all steps (how much of the solution the locator could see at all).
- ``right_for_wrong_reasons``: correct answers with a wrong step / correct answers with a checked step.
- ``wrong_steps_all_correct``: wrong answers with no wrong step / wrong answers with a checked step (an
  answer-extraction slip, a last step the locator cannot see, or an error in what was left unchecked).
- ``solutions_with_error``: solutions with a wrong step / solutions with a checked step.
- ``first_error_step`` (1-based) and ``first_error_relative`` ((first wrong step + 1) / steps), over solutions
  with a wrong step; ``first_error_hist``: the share of them whose first error is at step 1, 2, ... 10+.

Paired comparisons of two runs on the same problems use the gate's machinery (``stats.paired_difference``) on
per-problem values.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .locators import CORRECT, UNCHECKED, WRONG
from .metrics import Z95, wilson

HIST_BINS = 10  # first-error step 1..9, then 10+

SHARES = ("step_accuracy", "checkable", "right_for_wrong_reasons", "wrong_steps_all_correct", "solutions_with_error")
POSITIONS = ("first_error_step", "first_error_relative")
LABELS = {
    "step_accuracy": "step accuracy",
    "checkable": "steps checkable",
    "right_for_wrong_reasons": "right for wrong reasons",
    "wrong_steps_all_correct": "wrong answer, no wrong step",
    "solutions_with_error": "solutions with a wrong step",
    "first_error_step": "first error at step",
    "first_error_relative": "first error (share of solution)",
}


@dataclass
class SolutionSteps:
    """One sample's step verdicts joined with its graded answer (``correct`` None: not graded)."""

    problem_id: str
    sample_idx: int
    correct: bool | None
    verdicts: list[str]
    first_wrong: int | None
    outcome: str

    @property
    def checked(self) -> bool:
        return any(v != UNCHECKED for v in self.verdicts)


@dataclass
class _Ratio:
    """Per-problem numerators and denominators of one ratio metric."""

    num: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    den: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, pid: str, num: float, den: float = 1.0) -> None:
        self.num[pid] += num
        self.den[pid] += den

    def estimate(self, share: bool) -> dict[str, Any]:
        keys = [k for k in self.den if self.den[k] > 0]
        y = np.array([self.num[k] for k in keys], dtype=float)
        x = np.array([self.den[k] for k in keys], dtype=float)
        total = float(x.sum())
        if total == 0:
            return {"value": None, "ci95": [None, None], "n": 0, "problems": 0}
        r = float(y.sum() / total)
        c = len(keys)
        se = math.sqrt(c / (c - 1) * float(((y - r * x) ** 2).sum())) / total if c > 1 else math.nan
        if share:
            # Wilson at the effective size: the clustered variance against a binomial one of the same total
            binom = r * (1 - r) / total
            n_eff = total if (binom == 0 or se != se or se == 0) else min(total, max(1.0, total * binom / se**2))
            lo, hi = wilson(r * n_eff, n_eff) if n_eff >= 1 else (math.nan, math.nan)
        else:
            lo, hi = (r - Z95 * se, r + Z95 * se) if se == se else (math.nan, math.nan)
        return {"value": r, "ci95": [_f(lo), _f(hi)], "n": int(total), "problems": c}


def _f(x: float) -> float | None:
    return None if x != x else float(x)


def join(samples: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> list[SolutionSteps]:
    """Samples and their verdict rows matched on (problem_id, sample_idx); a sample without verdicts is left out."""
    by = {(r["problem_id"], int(r["sample_idx"])): r for r in rows}
    out = []
    for s in samples:
        r = by.get((s["problem_id"], int(s["sample_idx"])))
        if r is not None:
            out.append(
                SolutionSteps(
                    s["problem_id"], int(s["sample_idx"]), s.get("correct"), list(r["verdicts"]), r["first_wrong"],
                    r["outcome"],
                )
            )  # fmt: skip
    return out


def _ratios(sols: Sequence[SolutionSteps]) -> dict[str, _Ratio]:
    rs = {k: _Ratio() for k in (*SHARES, *POSITIONS)}
    for s in sols:
        pid, v = s.problem_id, s.verdicts
        n_ok, n_bad = v.count(CORRECT), v.count(WRONG)
        rs["step_accuracy"].add(pid, n_ok, n_ok + n_bad)
        rs["checkable"].add(pid, n_ok + n_bad, len(v))
        if not s.checked:
            continue
        has_error = s.first_wrong is not None
        rs["solutions_with_error"].add(pid, float(has_error))
        if s.correct is True:
            rs["right_for_wrong_reasons"].add(pid, float(has_error))
        elif s.correct is False:
            rs["wrong_steps_all_correct"].add(pid, float(not has_error))
        if has_error:
            rs["first_error_step"].add(pid, s.first_wrong + 1)
            rs["first_error_relative"].add(pid, (s.first_wrong + 1) / len(v))
    return rs


def step_metrics(sols: Sequence[SolutionSteps]) -> dict[str, Any]:
    """Every step metric with its 95% interval, the first-error distribution and the counts behind them."""
    rs = _ratios(sols)
    out: dict[str, Any] = {k: rs[k].estimate(share=k != "first_error_step") for k in (*SHARES, *POSITIONS)}
    firsts = [s for s in sols if s.first_wrong is not None and s.checked]
    bins: list[dict[str, Any]] = []
    for b in range(HIST_BINS):
        hist = _Ratio()
        for s in firsts:
            hist.add(s.problem_id, float(min(s.first_wrong, HIST_BINS - 1) == b))
        est = hist.estimate(share=True)
        bins.append({"step": f"{b + 1}" if b < HIST_BINS - 1 else f"{HIST_BINS}+", **est})
    while len(bins) > 1 and not any(
        s.first_wrong is not None and min(s.first_wrong, HIST_BINS - 1) >= len(bins) - 1 for s in firsts
    ):
        bins.pop()  # no solution errs that late: the tail of empty bins is not shown
    out["first_error_hist"] = bins if firsts else []
    out["counts"] = {
        "solutions": len(sols),
        "checked_solutions": sum(s.checked for s in sols),
        "steps": sum(len(s.verdicts) for s in sols),
        "outcomes": dict(Counter(s.outcome for s in sols)),
        "problems": len({s.problem_id for s in sols}),
    }
    return out


def per_problem(sols: Sequence[SolutionSteps], metric: str) -> dict[str, float]:
    """problem_id -> the metric's value on that problem's samples (problems where it is undefined are absent)."""
    r = _ratios(sols)[metric]
    return {k: r.num[k] / r.den[k] for k in r.den if r.den[k] > 0}


def compare_steps(a: Sequence[SolutionSteps], b: Sequence[SolutionSteps]) -> list[dict[str, Any]]:
    """``b - a`` for each step metric on the problems where both runs define it: the estimate, its 95% interval
    and the two-sided p (``stats.paired_difference``: the gate's and Compare's statistics; a paired t for the
    first-error step, which is not a share)."""
    from scipy import stats as sps

    from .stats import paired_difference

    out = []
    for m in (*SHARES, *POSITIONS):
        pa, pb = per_problem(a, m), per_problem(b, m)
        common = sorted(pa.keys() & pb.keys())
        da = np.array([pa[k] for k in common], dtype=float)
        db = np.array([pb[k] for k in common], dtype=float)
        row: dict[str, Any] = {"metric": m, "label": LABELS[m], "problems": len(common)}
        if m == "first_error_step":
            if len(common) >= 2 and np.any(da != db):
                t = sps.ttest_rel(db, da)
                ci = t.confidence_interval(0.95)
                row.update(diff=float((db - da).mean()), ci95=[float(ci.low), float(ci.high)], p=float(t.pvalue))
            else:
                d = float((db - da).mean()) if common else None
                row.update(diff=d, ci95=[d, d] if d is not None else [None, None], p=1.0 if common else None)
        else:
            d = paired_difference(da, db)
            lo, hi = d.ci(0.025)
            row.update(
                diff=_f(d.diff),
                ci95=[_f(lo), _f(hi)],
                p=_f(d.p_two_sided(0.0)),
                a=_f(d.acc_a),
                b=_f(d.acc_b),
            )
        out.append(row)
    return out
