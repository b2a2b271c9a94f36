"""The paired statistics against independent references: a numerically maximised score statistic inverted by root
finding (Tango), exact multinomial coverage, scipy's ttest_rel, Holm from its definition, a bivariate normal for
the group-sequential boundary, and exact pass@k by counting subsets."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm, ttest_rel

from stepdpo_bench.compare import tiers
from stepdpo_bench.metrics import pass_at_k
from stepdpo_bench.stats import (
    holm,
    holm_adjusted,
    paired_difference,
    spent,
    tango_ci,
    two_look_tails,
    z_of,
)

from . import reference as ref

EDGES = [(0, 0, 1), (0, 0, 30), (5, 0, 100), (0, 5, 100), (30, 0, 30), (0, 30, 30), (1, 0, 1), (20, 40, 160)]


def _cases() -> list[tuple[int, int, int]]:
    rng = random.Random(7)
    out = list(EDGES)
    for _ in range(25):
        n = rng.randint(1, 2000)
        f = rng.randint(0, n)
        b = rng.randint(0, n - f)
        out.append((f, b, n))
    return out


@pytest.mark.parametrize(("f", "b", "n"), _cases())
def test_tango_interval_matches_a_numeric_inversion_of_the_score_test(f, b, n):
    ours = tango_ci(f, b, n, z_of(0.025))
    theirs = ref.tango_ci(f, b, n, 0.95)
    assert ours == pytest.approx(theirs, abs=2e-6), (f, b, n)
    assert ours[0] <= (f - b) / n <= ours[1]


def test_no_change_is_not_a_zero_width_interval():
    """30 problems that all agree: about +-11 points at 95%, not [0, 0] (the old percentile bootstrap's answer)."""
    lo, hi = tango_ci(0, 0, 30, z_of(0.025))
    assert lo == pytest.approx(-hi) and 0.10 < hi < 0.12


@pytest.mark.parametrize(
    ("n", "p12", "p21"), [(30, 0.03, 0.03), (30, 0.0, 0.1), (60, 0.02, 0.08), (100, 0.01, 0.04), (40, 0.2, 0.1)]
)
def test_exact_coverage_holds_with_few_discordant_problems(n, p12, p21):
    cov = ref.exact_coverage(n, p12, p21, lambda f, b, m: tango_ci(f, b, m, z_of(0.025)))
    assert cov >= 0.93, cov  # nominal 0.95; Tango's interval is close to it even here


def test_one_sided_p_values_agree_with_the_interval():
    d = paired_difference(np.array([1.0] * 50 + [0.0] * 50), np.array([1.0] * 44 + [0.0] * 54 + [1.0] * 2))
    lo, hi = d.ci(0.025)
    assert d.p_above(lo) == pytest.approx(0.025, abs=1e-6) and d.p_below(hi) == pytest.approx(0.025, abs=1e-6)
    assert d.p_two_sided(0.0) == pytest.approx(2 * norm.sf(abs(d.n_fixed - d.n_broken) / math.sqrt(8)), rel=1e-9)


def test_several_samples_per_problem_use_a_paired_t_that_never_has_zero_error():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=400) / 4
    b = np.clip(a + rng.integers(-1, 2, size=400) / 4, 0, 1)
    d = paired_difference(a, b)
    assert not d.binary and d.test == "paired t"
    ref_p = ttest_rel(b, a).pvalue
    assert d.p_two_sided(0.0) == pytest.approx(ref_p, rel=0.05)  # the pseudo problems barely move a real test
    constant = paired_difference(np.full(100, 0.75), np.full(100, 0.5))  # every problem moved by the same amount
    assert constant.se > 0 and constant.p_below(0.0) < 1e-6
    same = paired_difference(np.full(30, 0.5), np.full(30, 0.5))
    lo, hi = same.ci(0.025)
    assert lo < -0.05 and hi > 0.05  # nothing moved on 30 problems is not proof of no change


@pytest.mark.parametrize("seed", range(20))
def test_holm_matches_its_definition(seed):
    rng = random.Random(seed)
    ps = [rng.random() ** 3 for _ in range(rng.randint(1, 12))]
    assert holm(ps, 0.05) == ref.holm(ps, 0.05)
    assert [a <= 0.05 for a in holm_adjusted(ps)] == ref.holm(ps, 0.05)


@pytest.mark.parametrize("spending", ["pocock", "obrien-fleming"])
@pytest.mark.parametrize("t1", [0.1, 0.25, 0.5, 0.8])
def test_two_looks_spend_exactly_the_one_sided_level(t1, spending):
    tail = 0.025
    interim, final = two_look_tails(t1, tail, spending)
    want = (
        tail * math.log(1 + (math.e - 1) * t1)
        if spending == "pocock"
        else 2 - 2 * norm.cdf(norm.isf(tail / 2) / t1**0.5)
    )
    assert interim == pytest.approx(want, rel=1e-5) and spent(1.0, tail, spending) == pytest.approx(tail)
    c1, c2 = norm.isf(interim), norm.isf(final)
    mvn = multivariate_normal([0, 0], [[1, math.sqrt(t1)], [math.sqrt(t1), 1]])
    total = interim + (norm.cdf(c1) - mvn.cdf([c1, c2]))  # reject at look 1, or not at 1 and at 2
    assert total == pytest.approx(tail, abs=2e-5)
    assert final < tail


def _exact_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of k-subsets of n samples (c correct) holding a correct one, by enumeration."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 2), (5, 1, 2), (5, 4, 2), (6, 3, 4), (4, 4, 4), (7, 2, 1)])
def test_pass_at_k_is_exact(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_exact_pass_at_k(n, c, k))


def test_pass_at_k_refuses_k_above_n():
    with pytest.raises(ValueError, match="k = 5 > n = 2"):
        pass_at_k(2, 0, 5)


def test_tiers_hold_equal_runs_together_and_split_a_clear_gap():
    rng = np.random.default_rng(1)
    p = rng.beta(0.4, 0.4, size=500)
    equal = np.array([(rng.random(500) < p).astype(float) for _ in range(6)])
    order = np.argsort(-equal.mean(axis=1))
    t = tiers([str(i) for i in order], equal[order])
    assert {v["tier"] for v in t.values()} == {1}
    worse = (rng.random(500) < np.clip(p - 0.15, 0, 1)).astype(float)
    both = np.vstack([equal[order], worse])
    t = tiers([*map(str, order), "worse"], both)
    assert t["worse"]["tier"] == 2 and t["worse"]["vs_shared"] == 500 and t["worse"]["vs_p_holm"] < 0.05
