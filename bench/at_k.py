"""Coverage of the avg@k interval on small sets, by simulation at the boundary the decision is made on.

    python bench/at_k.py [--sims 4000]

Each simulated run draws m problems with true solve rates from a Beta(a, b) population and k samples per problem,
then asks whether the 95% interval covers the population mean (what a paper's "avg@k on AIME" estimates).  Ours
(stepdpo_bench/at_k.py: clustered t with a 0 and a 1 pseudo problem) is printed beside the plain normal interval
on the per-problem means and a percentile bootstrap over problems (the peer methods), same draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepdpo_bench.at_k import clustered_interval

CASES = [(30, 32, 0.6, 0.9), (30, 16, 0.2, 2.0), (30, 64, 2.0, 0.3), (40, 8, 0.5, 0.5), (272, 4, 1.0, 1.5)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--boot", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'problems':>8} {'k':>3} {'population':>12} {'mean':>5} | {'ours':>6} {'normal':>6} {'bootstrap':>9}")
    for m, k, a, b in CASES:
        mu = a / (a + b)
        hits = {"ours": 0, "normal": 0, "bootstrap": 0}
        for _ in range(args.sims):
            v = rng.binomial(k, rng.beta(a, b, size=m)) / k
            lo, hi = clustered_interval(list(v))["ci95"]
            hits["ours"] += lo <= mu <= hi
            se = v.std(ddof=1) / np.sqrt(m)
            hits["normal"] += v.mean() - 1.96 * se <= mu <= v.mean() + 1.96 * se
            boot = v[rng.integers(0, m, size=(args.boot, m))].mean(axis=1)
            hits["bootstrap"] += np.quantile(boot, 0.025) <= mu <= np.quantile(boot, 0.975)
        cov = {key: val / args.sims for key, val in hits.items()}
        print(
            f"{m:>8} {k:>3} {f'Beta({a},{b})':>12} {mu:>5.2f} | {cov['ours']:>6.3f} {cov['normal']:>6.3f} "
            f"{cov['bootstrap']:>9.3f}"
        )
    print(f"(95% intervals; {args.sims} simulated runs per row; Monte Carlo error about +-0.004)")


if __name__ == "__main__":
    main()
