"""Paired comparison of two runs on the problems both answered: difference with a CI, McNemar, fixed/broken.

Two checkpoints scored on the same problems are paired data: comparing their accuracies as if independent
wastes most of the evidence.  Per problem we take each run's mean correctness (1 sample: 0/1), so the
difference's standard error is clustered by problem automatically.  With one sample per problem the exact
McNemar test (a binomial test on the discordant problems) gives the p-value; with several, a paired t-test on
per-problem means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Z95 = 1.959963984540054


@dataclass
class Paired:
    n: int  # problems both runs answered
    acc_a: float
    acc_b: float
    diff: float  # b - a
    se: float
    ci95: tuple[float, float]
    p_value: float
    test: str
    fixed: list[str] = field(default_factory=list)  # wrong in a, right in b
    broken: list[str] = field(default_factory=list)  # right in a, wrong in b

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n", "acc_a", "acc_b", "diff", "se", "ci95", "p_value", "test")} | {
            "n_fixed": len(self.fixed), "n_broken": len(self.broken)}  # fmt: skip


def per_problem(samples: Iterable[dict[str, Any]]) -> dict[str, float]:
    """problem_id -> mean correctness over its samples."""
    acc: dict[str, list[int]] = defaultdict(list)
    for s in samples:
        acc[s["problem_id"]].append(1 if s["correct"] else 0)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (binomial test, p = 0.5)."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(b, b + c, 0.5).pvalue)


def paired(a: dict[str, float], b: dict[str, float], one_sample: bool | None = None) -> Paired:
    """Compare per-problem scores ``a`` (baseline) and ``b`` (candidate) on their common problems."""
    common = sorted(a.keys() & b.keys())
    n = len(common)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, (math.nan, math.nan), math.nan, "none")
    da = [a[k] for k in common]
    db = [b[k] for k in common]
    d = [y - x for x, y in zip(da, db, strict=True)]
    mean_d = sum(d) / n
    var = sum((x - mean_d) ** 2 for x in d) / (n - 1) if n > 1 else math.nan
    se = math.sqrt(var / n) if n > 1 else math.nan
    fixed = [k for k in common if b[k] > a[k]]
    broken = [k for k in common if b[k] < a[k]]
    binary = all(v in (0.0, 1.0) for v in (*da, *db)) if one_sample is None else one_sample
    if binary:
        p, test = mcnemar_exact(len(fixed), len(broken)), "McNemar exact"
    elif se and se > 0:
        from scipy.stats import t as student_t

        p, test = float(2 * student_t.sf(abs(mean_d / se), n - 1)), "paired t"
    else:
        p, test = 1.0, "paired t"
    ci = (mean_d - Z95 * se, mean_d + Z95 * se) if se == se else (math.nan, math.nan)
    return Paired(n, sum(da) / n, sum(db) / n, mean_d, se, ci, p, test, fixed, broken)


def tiers(order: Sequence[str], scores: dict[str, dict[str, float]], alpha: float = 0.05) -> dict[str, int]:
    """Tier numbers for runs sorted best-first: a run starts a new tier only when it is significantly worse
    than the best run of the current tier (paired test on common problems); otherwise it is tied with it."""
    out: dict[str, int] = {}
    tier, head = 0, None
    for rid in order:
        if head is None:
            head = rid
        else:
            cmp = paired(scores[head], scores[rid])
            if cmp.n > 0 and cmp.p_value < alpha and cmp.diff < 0:
                tier += 1
                head = rid
        out[rid] = tier + 1
    return out


def breakdown(a_samples: Sequence[dict[str, Any]], b_samples: Sequence[dict[str, Any]], key: str) -> list[dict]:
    """Paired comparison within each value of ``key`` (subject, level)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for s in a_samples:
        if s.get(key) is not None:
            groups[str(s[key])].add(s["problem_id"])
    a, b = per_problem(a_samples), per_problem(b_samples)
    rows = []
    for g, ids in sorted(groups.items()):
        res = paired({k: a[k] for k in ids if k in a}, {k: b[k] for k in ids if k in b})
        rows.append({key: g, **res.to_dict()})
    return rows
