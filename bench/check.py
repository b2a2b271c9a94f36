"""Is the gate honest?  Simulated baseline/candidate pairs with known true differences, decided by the gate's own
code (``stepdpo_bench.gate.decide`` on ``stats.paired_difference``, the function ``judge`` calls), and the
leaderboard's tiers on equally good runs.

    python bench/check.py [--sims 2000] [--margin 1.0] [--sizes 500,1319,5000] [--tier-sims 400]

Data model: each problem has its own difficulty p ~ Beta(0.33, 0.27) (mean 0.55, strongly bimodal like real
benchmarks: most problems are almost always or almost never solved); the candidate's probability is
``clip(p + s)`` with the shift ``s`` solved per simulation so that the expected difference given the problems is
exactly the true difference; both runs draw independently given each problem's probability.

Prints, per size and design (one look on all problems; two looks: a 10% stratified-size subset first, the full
set when undecided, with the gate's Pocock-type alpha spending): the fail / inconclusive / pass rates at true
differences 0, -margin/2, -margin and -2 margins, each with its Monte Carlo standard error.  Targets: false
fail <= alpha/2 at -margin/2, false pass <= alpha/2 at -margin, at every size.  Then, for the tiers: with K
equally good runs on 500 problems, how often the board shows more than one tier (target <= alpha).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepdpo_bench.compare import tiers
from stepdpo_bench.gate import FAIL, INCONCLUSIVE, PASS, decide
from stepdpo_bench.stats import paired_difference, two_look_tails


def candidate_probs(p: np.ndarray, true_diff: float) -> np.ndarray:
    """``clip(p + s)`` with ``mean(clip(p + s) - p) == true_diff`` exactly."""
    if true_diff == 0:
        return p.copy()

    def gap(s: float) -> float:
        return float(np.clip(p + s, 0, 1).mean() - p.mean() - true_diff)

    s = brentq(gap, -1.0, 1.0, xtol=1e-12)
    return np.clip(p + s, 0, 1)


def one_sim(rng: np.random.Generator, n: int, true_diff: float, margin: float, alpha: float, two_looks: bool) -> str:
    p = rng.beta(0.33, 0.27, size=n)
    q = candidate_probs(p, true_diff)
    a = (rng.random(n) < p).astype(float)
    b = (rng.random(n) < q).astype(float)
    if not two_looks:
        return decide(paired_difference(a, b), margin, alpha / 2)[0]
    n1 = max(1, round(0.1 * n))
    first, final = two_look_tails(n1 / n, alpha / 2)
    sub = rng.choice(n, size=n1, replace=False)
    verdict = decide(paired_difference(a[sub], b[sub]), margin, first)[0]
    if verdict != INCONCLUSIVE:
        return verdict
    return decide(paired_difference(a, b), margin, final)[0]


def _rate(k: int, sims: int) -> str:
    r = k / sims
    return f"{r:.3f}±{math.sqrt(max(r * (1 - r), 1 / sims) / sims):.3f}"


def gate_table(sims: int, sizes: list[int], margin: float, alpha: float, only: str | None = None) -> list[dict]:
    truths = [("0", 0.0), ("-m/2", -margin / 2), ("-m", -margin), ("-2m", -2 * margin)]
    truths = [t for t in truths if only is None or t[0] in only.split(",")]
    rows = []
    print(f"gate: {sims} simulations per cell, margin {100 * margin:g} pts, alpha {alpha} (each side alpha/2)")
    print(f"{'problems':>8} {'design':>9} {'true':>5} {'fail':>13} {'inconclusive':>13} {'pass':>13}")
    for n in sizes:
        for two in (False, True):
            for name, truth in truths:
                rng = np.random.default_rng(zlib.crc32(f"{n}-{two}-{name}".encode()))  # stable across runs
                counts = {FAIL: 0, INCONCLUSIVE: 0, PASS: 0}
                for _ in range(sims):
                    counts[one_sim(rng, n, truth, margin, alpha, two)] += 1
                design = "two looks" if two else "one look"
                print(
                    f"{n:>8} {design:>9} {name:>5} {_rate(counts[FAIL], sims):>13} "
                    f"{_rate(counts[INCONCLUSIVE], sims):>13} {_rate(counts[PASS], sims):>13}"
                )
                rows.append({"n": n, "design": design, "truth": name, **{k: v / sims for k, v in counts.items()}})
    return rows


def tier_table(sims: int, alpha: float) -> list[dict]:
    print(f"tiers: {sims} simulations per K; K equally good runs (accuracy 0.55) on 500 problems")
    print(f"{'K':>4} {'P(>1 tier)':>14}")
    rows = []
    for k in (5, 10, 20):
        rng = np.random.default_rng(k)
        split = 0
        for _ in range(sims):
            p = rng.beta(0.33, 0.27, size=500)
            scores = (rng.random((k, 500)) < p).astype(float)
            order = np.argsort(-scores.mean(axis=1), kind="stable")
            t = tiers([str(i) for i in order], scores[order], alpha)
            split += len({v["tier"] for v in t.values()}) > 1
        print(f"{k:>4} {_rate(split, sims):>14}")
        rows.append({"k": k, "p_split": split / sims})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--sizes", default="500,1319,5000")
    ap.add_argument("--margin", type=float, default=1.0, help="--max-drop in points")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--tier-sims", type=int, default=400)
    ap.add_argument("--truths", default=None, help="Only these true differences, e.g. -m (for a tighter estimate).")
    args = ap.parse_args()
    t0 = time.perf_counter()
    margin = args.margin / 100
    rows = gate_table(args.sims, [int(x) for x in args.sizes.split(",")], margin, args.alpha, args.truths)
    for truth, side, what in (("-m/2", FAIL, "false fail"), ("-m", PASS, "false pass")):
        cells = [r[side] for r in rows if r["truth"] == truth]
        if cells:
            pooled = sum(cells) / len(cells)
            se = (pooled * (1 - pooled) / (args.sims * len(cells))) ** 0.5
            worst = max(cells)
            print(f"{what} at {truth}: worst cell {worst:.3f}, pooled over {len(cells)} cells {pooled:.4f}±{se:.4f}")
    if args.tier_sims:
        tier_table(args.tier_sims, args.alpha)
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
