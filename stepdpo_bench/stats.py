"""The paired statistics every comparison uses (the gate, Compare, the tiers): one interval, one test, one path.

Two runs scored on the same problems are paired.  Per problem we take each run's mean correctness; the
difference of interest is ``delta = acc_b - acc_a``.

- **One sample per problem** (0/1 scores): Tango's score interval for a difference of paired proportions
  (Tango 1998, Stat Med 17:891).  The score test inverts ``T(d0) = (f - b - n d0) / sqrt(n (2 p21 + d0 (1 - d0)))``
  with ``f`` problems fixed, ``b`` broken and ``p21`` the restricted MLE of the "broken" cell under ``delta = d0``.
  Unlike a Wald or percentile-bootstrap interval it does not collapse when few problems change: 30 problems that
  all agree give about +-11 points at 95%, not [0, 0].
- **Several samples per problem**: a paired t interval on per-problem means (clustered by problem), with the
  variance estimate given one pseudo problem each way (+1 and -1, the Agresti-Min "add a discordant pair each
  way" idea for paired data) so that a run pair whose per-problem means all agree, or all move by the same
  amount, never gets a zero standard error.

The same object answers the gate's one-sided questions at any critical value (``p_below``, ``p_above``, ``ci``),
so group-sequential boundaries (``two_look_tails``) and Holm adjustments use the very interval the report prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def z_of(p_upper: float) -> float:
    """The standard normal quantile with ``p_upper`` above it."""
    from scipy.stats import norm

    return float(norm.isf(p_upper))


def _tango_p21(f: int, b: int, n: int, d0: float) -> float:
    """Restricted MLE of P(right in A, wrong in B) under delta = d0 (the root of Tango's quadratic)."""
    aa = 2 * n
    bb = -f - b + (2 * n - f + b) * d0
    cc = -b * d0 * (1 - d0)
    return (math.sqrt(max(bb * bb - 4 * aa * cc, 0.0)) - bb) / (2 * aa)


def tango_score(f: int, b: int, n: int, d0: float) -> float:
    """Tango's score statistic for H0: delta = d0 (decreasing in d0); +-inf at the edges it cannot reach."""
    var = n * (2 * _tango_p21(f, b, n, d0) + d0 * (1 - d0))
    num = f - b - n * d0
    if var <= _EPS:
        return math.copysign(math.inf, num) if abs(num) > _EPS else 0.0
    return num / math.sqrt(var)


def _root(fn, lo: float, hi: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(fn, lo, hi, xtol=1e-10))


def tango_ci(f: int, b: int, n: int, z: float) -> tuple[float, float]:
    """The interval {d0 : |T(d0)| <= z} for delta = (f - b) / n."""
    if n == 0:
        return (math.nan, math.nan)
    est = (f - b) / n
    edge = 1 - 1e-12
    lo = (
        -1.0
        if est <= -edge or tango_score(f, b, n, -edge) <= z
        else _root(lambda d: tango_score(f, b, n, d) - z, -edge, est)
    )
    hi = (
        1.0
        if est >= edge or tango_score(f, b, n, edge) >= -z
        else _root(lambda d: tango_score(f, b, n, d) + z, est, edge)
    )
    return (lo, hi)


@dataclass
class PairedDifference:
    """``b - a`` on aligned per-problem scores: estimate, interval at any critical value, one-sided p-values."""

    n: int
    acc_a: float
    acc_b: float
    diff: float
    se: float  # the standard error used by the t path (Tango's is implicit in its score statistic)
    binary: bool
    n_fixed: int
    n_broken: int

    @property
    def test(self) -> str:
        return "Tango score" if self.binary else "paired t"

    def _t(self, d0: float) -> float:
        if self.binary:
            return tango_score(self.n_fixed, self.n_broken, self.n, d0)
        return (self.diff - d0) / self.se

    def _cdf(self, x: float) -> float:
        if self.binary or self.n < 3:
            return _norm_cdf(x)
        from scipy.stats import t as student_t

        return float(student_t.cdf(x, self.n - 1))

    def p_below(self, d0: float) -> float:
        """One-sided p for H0: delta >= d0 against delta < d0 (small: the difference is surely below d0)."""
        return math.nan if self.n == 0 else self._cdf(self._t(d0))

    def p_above(self, d0: float) -> float:
        """One-sided p for H0: delta <= d0 against delta > d0."""
        return math.nan if self.n == 0 else 1 - self._cdf(self._t(d0))

    def p_two_sided(self, d0: float = 0.0) -> float:
        return math.nan if self.n == 0 else min(1.0, 2 * min(self.p_below(d0), self.p_above(d0)))

    def ci(self, tail: float) -> tuple[float, float]:
        """The interval with ``tail`` probability excluded on each side (tail = alpha/2 for a 1-alpha CI)."""
        if self.n == 0:
            return (math.nan, math.nan)
        if self.binary:
            return tango_ci(self.n_fixed, self.n_broken, self.n, z_of(tail))
        if self.n < 3:
            c = z_of(tail)
        else:
            from scipy.stats import t as student_t

            c = float(student_t.isf(tail, self.n - 1))
        return (max(-1.0, self.diff - c * self.se), min(1.0, self.diff + c * self.se))


def paired_difference(da: np.ndarray, db: np.ndarray) -> PairedDifference:
    """The paired difference of per-problem scores ``db - da`` (NaN = not answered: dropped pairwise)."""
    da, db = np.asarray(da, dtype=float), np.asarray(db, dtype=float)
    keep = ~(np.isnan(da) | np.isnan(db))
    da, db = da[keep], db[keep]
    n = int(da.size)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, math.nan, True, 0, 0)
    d = db - da
    mean_d = float(d.mean())
    binary = bool(np.isin(da, (0.0, 1.0)).all() and np.isin(db, (0.0, 1.0)).all())
    pseudo = (1 - mean_d) ** 2 + (-1 - mean_d) ** 2  # one pseudo problem each way, around the estimate
    se = math.sqrt((float(((d - mean_d) ** 2).sum()) + pseudo) / (n + 1) / n)
    return PairedDifference(
        n, float(da.mean()), float(db.mean()), mean_d, se, binary, int((d > 0).sum()), int((d < 0).sum())
    )


def holm(pvalues: list[float], alpha: float) -> list[bool]:
    """Holm's step-down rejections (family-wise error <= alpha under any dependence)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    reject = [False] * len(pvalues)
    m = len(pvalues)
    for rank, i in enumerate(order):
        if not pvalues[i] <= alpha / (m - rank):
            break
        reject[i] = True
    return reject


def holm_adjusted(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (monotone), for reports: reject at alpha exactly when adjusted <= alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    m, out, running = len(pvalues), [1.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


SPENDING = ("pocock", "obrien-fleming")


def spent(t: float, tail: float, spending: str = "pocock") -> float:
    """Lan-DeMets alpha spending: the one-sided error allowed by information fraction ``t``.  Pocock-type
    ``tail * ln(1 + (e - 1) t)`` spends early (a clear drop is caught on a small subset); O'Brien-Fleming-type
    ``2 - 2 Phi(z_{tail/2} / sqrt(t))`` keeps almost everything for the final look."""
    from scipy.stats import norm

    if spending == "pocock":
        return tail * math.log(1 + (math.e - 1) * t)
    if spending == "obrien-fleming":
        return float(2 - 2 * norm.cdf(norm.isf(tail / 2) / math.sqrt(t)))
    raise ValueError(f"unknown spending function {spending!r}; choose from {', '.join(SPENDING)}")


def two_look_tails(t1: float, tail: float, spending: str = "pocock") -> tuple[float, float]:
    """One-sided levels for a two-look design (an interim look at information fraction ``t1``, then the final)
    whose total one-sided error is ``tail``: the interim spends ``spent(t1)``; the final boundary ``c2`` solves
    ``P(Z1 < c1, Z2 >= c2) = tail - spent(t1)`` with corr(Z1, Z2) = sqrt(t1).  Returns (interim, final), each the
    nominal one-sided level of that look's interval."""
    from scipy.optimize import brentq
    from scipy.stats import multivariate_normal, norm

    t1 = min(max(t1, 1e-6), 1.0)
    first = spent(t1, tail, spending)
    if t1 >= 1 or first <= 0:
        return (max(first, 1e-300), tail)
    c1 = float(norm.isf(first))
    cov = [[1.0, math.sqrt(t1)], [math.sqrt(t1), 1.0]]
    mvn = multivariate_normal(mean=[0.0, 0.0], cov=cov)

    def excess(c2: float) -> float:
        # P(Z1 < c1, Z2 >= c2) = P(Z1 < c1) - P(Z1 < c1, Z2 < c2)
        return (norm.cdf(c1) - float(mvn.cdf([c1, c2]))) - (tail - first)

    c2 = float(brentq(excess, 0.0, 10.0, xtol=1e-9))
    return (first, float(norm.sf(c2)))
