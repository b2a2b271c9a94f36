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

import numpy as np

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
    fixed: list[str] = field(default_factory=list)  # wrong in a, right in b (ids, when known)
    broken: list[str] = field(default_factory=list)  # right in a, wrong in b
    n_fixed: int = 0
    n_broken: int = 0

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, Any]:
        keys = ("n", "acc_a", "acc_b", "diff", "se", "ci95", "p_value", "test", "n_fixed", "n_broken")
        return {k: getattr(self, k) for k in keys}


def per_problem(samples: Iterable[dict[str, Any]]) -> dict[str, float]:
    """problem_id -> mean correctness over its samples."""
    acc: dict[str, list[int]] = defaultdict(list)
    for s in samples:
        acc[s["problem_id"]].append(1 if s["correct"] else 0)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: under H0 each discordant problem goes either
    way with p = 1/2, and for that symmetric binomial the two-sided p is twice the smaller tail."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(b, c), b + c, 0.5)))


def paired(a: dict[str, float], b: dict[str, float]) -> Paired:
    """Compare per-problem scores ``a`` (baseline) and ``b`` (candidate) on their common problems."""
    common = sorted(a.keys() & b.keys())
    res = paired_arrays(np.array([a[k] for k in common], dtype=float), np.array([b[k] for k in common], dtype=float))
    res.fixed = [k for k in common if b[k] > a[k]]
    res.broken = [k for k in common if b[k] < a[k]]
    return res


def paired_arrays(da: np.ndarray, db: np.ndarray) -> Paired:
    """The paired statistics on aligned per-problem score vectors (NaN = not answered, dropped pairwise)."""
    keep = ~(np.isnan(da) | np.isnan(db))
    da, db = da[keep], db[keep]
    n = int(da.size)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, (math.nan, math.nan), math.nan, "none")
    d = db - da
    mean_d = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    n_fixed, n_broken = int((d > 0).sum()), int((d < 0).sum())
    if bool(np.isin(da, (0.0, 1.0)).all() and np.isin(db, (0.0, 1.0)).all()):
        p, test = mcnemar_exact(n_fixed, n_broken), "McNemar exact"
    elif se > 0:
        from scipy.stats import t as student_t

        p, test = float(2 * student_t.sf(abs(mean_d / se), n - 1)), "paired t"
    else:
        p, test = 1.0, "paired t"
    ci = (mean_d - Z95 * se, mean_d + Z95 * se) if se == se else (math.nan, math.nan)
    res = Paired(n, float(da.mean()), float(db.mean()), mean_d, se, ci, p, test)
    res.n_fixed, res.n_broken = n_fixed, n_broken
    return res


def tiers(order: Sequence[str], scores: np.ndarray, alpha: float = 0.05) -> dict[str, int]:
    """Tier numbers for runs sorted best-first (``scores[i]`` = run ``order[i]``'s per-problem vector, NaN where
    unanswered): a run starts a new tier only when it is significantly worse than the best run of the current
    tier (paired test on common problems); otherwise it is tied with it.  Comparing with the tier's head, not the
    neighbour, stops a chain of small non-significant steps from hiding a real gap."""
    out: dict[str, int] = {}
    tier, head = 0, 0
    for i, rid in enumerate(order):
        if i > 0:
            cmp = paired_arrays(scores[head], scores[i])
            if cmp.n > 0 and cmp.p_value < alpha and cmp.diff < 0:
                tier += 1
                head = i
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


@dataclass
class RunComparison:
    """Two runs compared on their common problems, overall and per subject and level."""

    a: str
    b: str
    a_label: str
    b_label: str
    paired: Paired
    by_subject: list[dict[str, Any]]
    by_level: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def compare_runs(a: Any, b: Any) -> RunComparison:
    """``a`` (baseline) and ``b`` (candidate) run directories, paired on the problems both answered."""
    ma, mb = a.manifest(), b.manifest()
    for m, run in ((ma, a), (mb, b)):
        if m is None or not m.done:
            raise ValueError(f"{run.path}: not a finished run")
    warnings = []
    if ma.task.name != mb.task.name:
        warnings.append(f"different tasks: {ma.task.name} vs {mb.task.name}")
    sa, sb = a.read_samples(), b.read_samples()
    res = paired(per_problem(sa), per_problem(sb))
    if res.n == 0:
        raise ValueError(f"{a.run_id} and {b.run_id} share no problem")
    return RunComparison(
        a.run_id,
        b.run_id,
        ma.model.display,
        mb.model.display,
        res,
        breakdown(sa, sb, "subject"),
        breakdown(sa, sb, "level"),
        warnings,
    )


def comparison_table(res: RunComparison) -> list[Any]:
    """Rich tables: the overall paired result, then per subject and per level where the runs have them."""
    from rich.table import Table
    from rich.text import Text

    def pts(x: float) -> str:
        return "-" if x != x else f"{100 * x:+.1f}"

    p = res.paired
    head = Table(title=f"B − A on the {p.n} problems both answered ({p.test})")
    for col in ("A", "B", "A %", "B %", "B − A pts", "95% CI pts", "p", "fixed by B", "broken by B"):
        head.add_column(col, justify="left" if col in ("A", "B") else "right")
    ci = f"{pts(p.ci95[0])} … {pts(p.ci95[1])}"
    head.add_row(
        Text(res.a_label),
        Text(res.b_label),
        f"{100 * p.acc_a:.1f}",
        f"{100 * p.acc_b:.1f}",
        pts(p.diff),
        ci,
        f"{p.p_value:.3g}",
        str(p.n_fixed),
        str(p.n_broken),
    )
    tables = [head]
    for key, rows in (("subject", res.by_subject), ("level", res.by_level)):
        if not rows:
            continue
        t = Table(title=f"By {key}")
        for col in (key, "problems", "A %", "B %", "B − A pts", "95% CI pts", "p"):
            t.add_column(col, justify="left" if col == key else "right")
        for r in rows:
            lo, hi = r["ci95"]
            t.add_row(
                Text(str(r[key])),
                str(r["n"]),
                f"{100 * r['acc_a']:.1f}",
                f"{100 * r['acc_b']:.1f}",
                pts(r["diff"]),
                f"{pts(lo)} … {pts(hi)}",
                f"{r['p_value']:.3g}",
            )
        tables.append(t)
    return tables
