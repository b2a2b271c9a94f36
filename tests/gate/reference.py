"""Independent references for the paired statistics, written from the definitions with generic scipy tools
(no closed forms shared with ``stepdpo_bench.stats``)."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.stats import norm


def restricted_p21(f: int, b: int, n: int, d0: float) -> float:
    """MLE of P(broken) under delta = P(fixed) - P(broken) = d0, by maximising the multinomial likelihood."""
    c = n - f - b
    lo, hi = max(0.0, -d0) + 1e-12, (1 - d0) / 2 - 1e-12  # p21 >= 0, p12 = p21 + d0 >= 0, p12 + p21 <= 1
    if hi <= lo:
        return max(lo, 0.0)

    def nll(p21: float) -> float:
        p12 = p21 + d0
        rest = 1 - p12 - p21
        out = 0.0
        for count, p in ((f, p12), (b, p21), (c, rest)):
            if count:
                out -= count * math.log(max(p, 1e-300))
        return out

    return float(minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x)


def score(f: int, b: int, n: int, d0: float) -> float:
    var = n * (2 * restricted_p21(f, b, n, d0) + d0 * (1 - d0))
    return (f - b - n * d0) / math.sqrt(var) if var > 0 else math.copysign(math.inf, f - b - n * d0)


def tango_ci(f: int, b: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Invert the score test numerically (root finding on the numerically maximised statistic)."""
    z = norm.isf((1 - level) / 2)
    est = (f - b) / n
    e = 1 - 1e-9
    lo = -1.0 if score(f, b, n, -e) <= z else brentq(lambda d: score(f, b, n, d) - z, -e, est, xtol=1e-10)
    hi = 1.0 if score(f, b, n, e) >= -z else brentq(lambda d: score(f, b, n, d) + z, est, e, xtol=1e-10)
    return lo, hi


def exact_coverage(n: int, p12: float, p21: float, ci) -> float:
    """The exact probability that ``ci(f, b, n)`` contains the true p12 - p21, summing the multinomial."""
    from scipy.stats import multinomial

    true = p12 - p21
    total = 0.0
    for f in range(n + 1):
        for b in range(n + 1 - f):
            pr = multinomial.pmf([f, b, n - f - b], n, [p12, p21, 1 - p12 - p21])
            if pr < 1e-14:
                continue
            lo, hi = ci(f, b, n)
            total += pr * (lo - 1e-12 <= true <= hi + 1e-12)
    return total


def holm(pvalues: list[float], alpha: float) -> list[bool]:
    """Holm from its definition: reject H_(1..j) for the largest j with p_(i) <= alpha / (m - i + 1) for all i <= j."""
    m = len(pvalues)
    ranked = np.argsort(pvalues, kind="stable")
    reject = [False] * m
    for j in range(m):
        if all(pvalues[ranked[i]] <= alpha / (m - i) for i in range(j + 1)):
            for i in range(j + 1):
                reject[ranked[i]] = True
    return reject
