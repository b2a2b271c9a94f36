"""Is the gate honest?  Simulated baseline/candidate pairs with known true accuracies, judged by the real gate.

    python bench/check.py [--sims 200] [--problems 5000] [--margin 1.0]

Each problem has its own difficulty (a Beta distribution, as in real benchmarks) and the candidate's success
probability is shifted by the true difference.  Runs are written as real run files and judged by
``stepdpo_bench.gate.judge``.  Prints, per true difference: how often the gate says fail / inconclusive / pass.
What to read: at a true difference of 0 the fail rate (false alarm) must stay at or under alpha; at -2 points
(the drop the issue cares about, MATH-size sets) the fail rate is the gate's power.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepdpo_bench.gate import judge
from stepdpo_bench.grading import GRADER_VERSION
from stepdpo_bench.manifest import Manifest
from stepdpo_bench.runs import RunDir


def write_run(root: Path, name: str, correct: np.ndarray) -> RunDir:
    run = RunDir(root / name)
    run.path.mkdir(parents=True)
    n = correct.size
    pq.write_table(
        pa.table(
            {
                "run_id": [name] * n,
                "problem_id": [f"math/test/{i}" for i in range(n)],
                "sample_idx": [0] * n,
                "correct": correct.tolist(),
                "subject": ["Algebra"] * n,
                "level": ["3"] * n,
            }
        ),
        run.path / "samples.parquet",
    )
    run.write_manifest(
        Manifest.from_dict(
            {
                "run_id": name,
                "status": "done",
                "task": {"name": "math", "split": "test", "data_sha256": "0" * 64},
                "prompt": {"name": "qwen2-boxed"},
                "grader_version": GRADER_VERSION,
                "model": {"name_or_path": name, "method": "other"},
            }
        )
    )
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--problems", type=int, default=5000)
    ap.add_argument("--accuracy", type=float, default=0.55)
    ap.add_argument("--margin", type=float, default=1.0, help="--max-drop in points")
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    # per-problem difficulty: mean = accuracy, strongly bimodal like real benchmarks (most problems are
    # almost always or almost never solved), which is what makes paired tests powerful
    a, b = args.accuracy * 0.6, (1 - args.accuracy) * 0.6
    print(
        f"{args.sims} simulated pairs per row, {args.problems} problems, baseline accuracy {args.accuracy:.0%}, "
        f"margin {args.margin} pts, alpha {args.alpha}"
    )
    print(f"{'true diff (pts)':>16} {'fail':>7} {'inconcl.':>9} {'pass':>7}   (rates over simulations)")
    t0 = time.perf_counter()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for true_pts in (0.0, -0.5, -1.0, -2.0, -3.0, +1.0):
            counts = {"fail": 0, "inconclusive": 0, "pass": 0}
            for s in range(args.sims):
                p = rng.beta(a, b, size=args.problems)
                q = np.clip(p + true_pts / 100, 0, 1)
                # independent draws given each problem's difficulty: the runs agree on easy and hard problems
                # (the pairing) yet churn on the middle ones in both directions, as two checkpoints do
                base = write_run(Path(tmp) / f"{true_pts}-{s}", "base", rng.random(args.problems) < p)
                cand = write_run(Path(tmp) / f"{true_pts}-{s}", "cand", rng.random(args.problems) < q)
                v = judge(base, cand, max_drop=args.margin / 100, alpha=args.alpha, min_problems=1, seed=s)
                counts[v.verdict] += 1
            rows[true_pts] = counts
            r = {k: c / args.sims for k, c in counts.items()}
            print(f"{true_pts:>+16.1f} {r['fail']:>7.3f} {r['inconclusive']:>9.3f} {r['pass']:>7.3f}")
    fa = rows[0.0]["fail"] / args.sims
    power = rows[-2.0]["fail"] / args.sims
    print(
        f"false-alarm rate at zero difference: {fa:.3f} (alpha {args.alpha}); "
        f"power to fail a 2-point drop: {power:.3f}; {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
