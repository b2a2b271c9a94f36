r"""avg@k, pass@k and maj@k on small sets (AIME's 30 problems x 16-64 samples), each with an honest interval.

``--metrics avg@32,pass@1,pass@8,maj@16`` asks for them by name; k is at most the samples per problem.

- **avg@k**: each problem's mean correctness over its first k samples, averaged over problems.
- **pass@k**: the unbiased estimator (Chen et al. 2021) from each problem's n samples.
- **maj@k**: the equivalence-aware majority vote of the first k samples (``1/2`` and ``0.5`` are one vote).

**The interval counts both sources of noise**: the problems (30 of them, drawn from a population of such
problems) and the k samples drawn for each.  Every metric is a mean of per-problem values ``v_i``; the variance of
that mean, estimated from the spread of the ``v_i`` over problems (problem-clustered), already contains the
sampling noise of each ``v_i`` because each is itself an estimate from k samples.  That is exactly what a
problem-level bootstrap (resampling problems with all their samples) estimates, which ``tests/harness/
test_at_k.py`` checks against.  The interval is a t interval with m - 1 degrees of freedom (30 problems are few)
whose variance is computed with one pseudo problem at 0 and one at 1 added (the Agresti-Coull idea), so a run
that solves none or all of 30 problems still gets a width (about +-10 points), never [0, 0].

``sampling_share`` says how much of that variance is the k samples' (the within-problem binomial variance
``v_i (1 - v_i) / (k - 1)`` summed over problems, over the total): near 1, more samples would narrow the interval;
near 0, only more problems would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import majority_correct, pass_at_k

KINDS = ("avg", "pass", "maj")
_SPEC = re.compile(r"^(avg|pass|maj)@(\d+)$")


@dataclass(frozen=True)
class AtK:
    """One requested metric: ``avg@32``."""

    kind: str
    k: int

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.k}"


def parse_metrics(text: str | None, n: int) -> list[AtK]:
    """``avg@32,pass@1,maj@16`` -> specs; ValueError (one line, says what to set) on a bad name or k > n."""
    out: list[AtK] = []
    for part in (text or "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        m = _SPEC.match(part)
        if not m:
            raise ValueError(f"--metrics {part!r}: write avg@K, pass@K or maj@K (e.g. avg@32,pass@1,pass@8,maj@16)")
        spec = AtK(m.group(1), int(m.group(2)))
        if spec.k < 1:
            raise ValueError(f"--metrics {part}: k must be at least 1")
        if spec.k > n:
            raise ValueError(f"--metrics {part} needs at least {spec.k} samples per problem; set --n {spec.k} or more")
        if spec not in out:
            out.append(spec)
    return out


def default_metrics(n: int) -> list[AtK]:
    """What a run reports unasked: avg@n, and with n > 1 pass@k and maj@k at 1, 2, 4, ... and n."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    specs = [AtK("avg", n)]
    if n > 1:
        specs += [AtK("pass", k) for k in ks] + [AtK("maj", k) for k in ks if k > 1]
    return specs


def t_quantile(df: int, level: float = 0.95) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def clustered_interval(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean of per-problem values with a t interval (m - 1 df) whose variance has a 0 and a 1 pseudo problem."""
    m = len(values)
    if m == 0:
        return {"value": None, "stderr": None, "ci95": [None, None], "n_problems": 0}
    mean = sum(values) / m
    padded = [*values, 0.0, 1.0]
    mu = sum(padded) / len(padded)
    var = sum((v - mu) ** 2 for v in padded) / (len(padded) - 1)
    se = math.sqrt(var / m)
    half = t_quantile(max(m - 1, 1), level) * se
    return {"value": mean, "stderr": se, "ci95": [max(0.0, mean - half), min(1.0, mean + half)], "n_problems": m}


def per_problem(spec: AtK, samples: Sequence[dict[str, Any]], same: Callable[[str, str], bool]) -> float:
    """One problem's value of ``spec`` from its samples (sorted by sample index)."""
    correct = [bool(s["correct"]) for s in samples]
    if spec.kind == "avg":
        first = correct[: spec.k]
        return sum(first) / len(first)
    if spec.kind == "pass":
        return pass_at_k(len(correct), sum(correct), spec.k)
    return 1.0 if majority_correct([s["pred"] for s in samples[: spec.k]], correct[: spec.k], same) else 0.0


def at_k_metrics(
    by_problem: dict[str, list[dict[str, Any]]], specs: Sequence[AtK], same: Callable[[str, str], bool]
) -> dict[str, dict[str, Any]]:
    """``{"avg@32": {value, stderr, ci95, n_problems, sampling_share?}, ...}`` for the specs every problem has
    enough samples for (a problem with fewer samples than k leaves that metric out, never estimates it)."""
    n_min = min((len(ss) for ss in by_problem.values()), default=0)
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec.k > n_min:
            continue
        values = [per_problem(spec, ss, same) for ss in by_problem.values()]
        block = clustered_interval(values)
        if spec.kind == "avg" and spec.k > 1 and len(values) > 1:
            within = sum(v * (1 - v) / (spec.k - 1) for v in values) / len(values) ** 2
            total = sum((v - block["value"]) ** 2 for v in values) / (len(values) - 1) / len(values)
            block["sampling_share"] = min(1.0, within / total) if total > 0 else None
        out[spec.name] = block
    return out
