"""Paired comparison of two runs on the problems both answered: difference with a CI, the test, fixed/broken.

Two checkpoints scored on the same problems are paired data: comparing their accuracies as if independent
wastes most of the evidence.  Per problem we take each run's mean correctness (1 sample: 0/1), so everything is
clustered by problem.  The interval and the test are ``stats.paired_difference``'s (Tango's score interval for
0/1 scores, a paired t otherwise): the same numbers as the gate's and the tiers'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .stats import PairedDifference, holm_adjusted, paired_difference


@dataclass
class Paired:
    n: int  # problems both runs answered
    acc_a: float
    acc_b: float
    diff: float  # b - a
    se: float
    ci95: tuple[float, float]
    p_value: float  # two-sided, H0: no difference
    test: str
    fixed: list[str] = field(default_factory=list)  # wrong in a, right in b (ids, when known)
    broken: list[str] = field(default_factory=list)  # right in a, wrong in b
    n_fixed: int = 0
    n_broken: int = 0
    stat: PairedDifference | None = None  # for one-sided questions at other levels (the gate)

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, Any]:
        keys = ("n", "acc_a", "acc_b", "diff", "se", "ci95", "p_value", "test", "n_fixed", "n_broken")
        return {k: getattr(self, k) for k in keys}


def natural_key(pid: str) -> tuple:
    """Sort key for problem ids: ``math/2`` before ``math/10`` (digits compare as numbers)."""
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", pid))


def per_problem(samples: Iterable[dict[str, Any]]) -> dict[str, float]:
    """problem_id -> mean correctness over its samples."""
    acc: dict[str, list[int]] = defaultdict(list)
    for s in samples:
        acc[s["problem_id"]].append(1 if s["correct"] else 0)
    return {k: sum(v) / len(v) for k, v in acc.items()}


def paired(a: dict[str, float], b: dict[str, float]) -> Paired:
    """Compare per-problem scores ``a`` (baseline) and ``b`` (candidate) on their common problems."""
    common = list(a.keys() & b.keys())  # the statistics do not depend on the order; only the lists shown do
    res = paired_arrays(np.array([a[k] for k in common], dtype=float), np.array([b[k] for k in common], dtype=float))
    res.fixed = sorted((k for k in common if b[k] > a[k]), key=natural_key)
    res.broken = sorted((k for k in common if b[k] < a[k]), key=natural_key)
    return res


def paired_arrays(da: np.ndarray, db: np.ndarray) -> Paired:
    """The paired statistics on aligned per-problem score vectors (NaN = not answered, dropped pairwise)."""
    d = paired_difference(da, db)
    return Paired(
        d.n, d.acc_a, d.acc_b, d.diff, d.se, d.ci(0.025), d.p_two_sided(0.0), d.test,
        n_fixed=d.n_fixed, n_broken=d.n_broken, stat=d,
    )  # fmt: skip


def pairwise_p(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values of every pair of runs (rows of ``scores``, NaN = unanswered) and their shared problem
    counts.  Runs with 0/1 scores use Tango's score statistic at 0 in closed form, ``(f - b) / sqrt(f + b)``,
    from three matrix products; other pairs go through ``paired_difference``."""
    from scipy.stats import norm

    k = scores.shape[0]
    seen = ~np.isnan(scores)
    right = np.where(seen, np.nan_to_num(scores), 0.0)
    wrong = np.where(seen, 1.0 - np.nan_to_num(scores), 0.0)
    shared = seen.astype(float) @ seen.T.astype(float)
    fixed = wrong @ right.T  # [i, j]: wrong in i, right in j
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (fixed - fixed.T) / np.sqrt(fixed + fixed.T)
    p = np.where(fixed + fixed.T > 0, 2 * norm.sf(np.abs(np.nan_to_num(z))), 1.0)
    binary = np.array([np.isin(r[~np.isnan(r)], (0.0, 1.0)).all() for r in scores])
    for i in range(k):
        for j in range(i + 1, k):
            if not (binary[i] and binary[j]):
                p[i, j] = p[j, i] = paired_difference(scores[i], scores[j]).p_two_sided(0.0)
    p[shared == 0] = np.nan
    np.fill_diagonal(p, np.nan)
    return p, shared.astype(int)


def tiers(order: Sequence[str], scores: np.ndarray, alpha: float = 0.05) -> dict[str, dict[str, Any]]:
    """Tiers for runs on one problem set, sorted best-first (``scores[i]`` = run ``order[i]``'s per-problem
    vector).  Every pair is tested and the p-values are Holm-adjusted over all pairs, so with K equally good runs
    the chance of showing more than one tier is at most alpha.  A run starts a new tier only when it is
    significantly worse than the head of the current tier.  Returns, per run: ``tier``, and against its tier's
    head (or the head it left): the difference in points, the Holm-adjusted p and the problems they share."""
    k = len(order)
    out: dict[str, dict[str, Any]] = {}
    if k == 0:
        return out
    p, shared = pairwise_p(scores)
    iu = np.triu_indices(k, 1)
    adj = np.full((k, k), np.nan)
    if k > 1:
        flat = holm_adjusted([1.0 if np.isnan(x) else float(x) for x in p[iu]])
        adj[iu] = flat
        adj[(iu[1], iu[0])] = flat
    acc = np.array([np.nanmean(r) if np.any(~np.isnan(r)) else np.nan for r in scores])
    tier, head = 1, 0
    for i, rid in enumerate(order):
        vs = head
        if i > 0 and shared[head, i] > 0 and adj[head, i] <= alpha and acc[i] < acc[head]:
            tier, head = tier + 1, i
        out[rid] = {
            "tier": tier,
            "vs": order[vs] if i else None,
            "vs_diff": float(acc[i] - acc[vs]) if i else 0.0,
            "vs_p_holm": float(adj[vs, i]) if i else None,
            "vs_shared": int(shared[vs, i]),
        }
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
    elif ma.task.data_sha256 != mb.task.data_sha256:
        warnings.append("different task data (checksums differ): problems are paired by id, which may not match")

    def how(m: Any) -> tuple:
        s = m.sampling
        return (m.prompt.name, s.temperature, s.top_p, s.top_k, s.min_p, s.repetition_penalty, s.max_tokens, s.n)

    if how(ma) != how(mb):
        warnings.append(
            "different prompt or sampling (prompt, temperature, top_p, top_k, min_p, repetition_penalty, max_tokens, "
            f"n): {how(ma)} vs {how(mb)}"
        )
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
