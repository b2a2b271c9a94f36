"""Leaderboard store at scale: 200 runs x 5000 samples (1M sample rows) synthesised as real run files.

    python bench/store.py [--runs 200] [--samples 5000] [--out bench/out/store]

Times, on the full index: ingest of everything, ingest of one more 5000-sample run (goal < 2 s), the
leaderboard query with tiers (goal < 300 ms) and the paired compare query behind the app's Compare page
(goal < 300 ms).  Each query figure is the median of 7 runs after one warm-up; it prints ratios to the goals.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from app.data import Data  # noqa: E402
from stepdpo_bench.grading import GRADER_VERSION  # noqa: E402
from stepdpo_bench.leaderboard import leaderboard  # noqa: E402
from stepdpo_bench.manifest import Manifest  # noqa: E402
from stepdpo_bench.runs import RunDir  # noqa: E402
from stepdpo_bench.store import connect, ingest  # noqa: E402

TASKS = ("math", "gsm8k", "math500", "odyssey")
SUBJECTS = ("Algebra", "Geometry", "Number Theory", "Prealgebra", "Precalculus", "Counting & Probability")


def synth_run(out: Path, i: int, n: int, rng: random.Random) -> None:
    task = TASKS[i % len(TASKS)]
    rid = f"model-{i:03d}__{task}__{i:012x}"
    acc = rng.uniform(0.2, 0.8)
    correct = [rng.random() < acc for _ in range(n)]
    steps = [
        [f"Step {k}: {rng.randint(1, 99)} + {rng.randint(1, 99)} = {rng.randint(1, 199)}" for k in range(1, 5)]
        for _ in range(n)
    ]
    table = pa.table(
        {
            "run_id": [rid] * n,
            "problem_id": [f"{task}/test/{j}" for j in range(n)],
            "sample_idx": [0] * n,
            "prompt": [f"Problem {j}: what is the value?" for j in range(n)],
            "completion": ["\n".join(s) + "\nThe answer is: 7" for s in steps],
            "steps": steps,
            "pred": ["7"] * n,
            "gold": ["7" if c else "8" for c in correct],
            "correct": correct,
            "reason": ["exact match after normalisation" if c else "numeric: 7 != 8" for c in correct],
            "finish_reason": ["stop"] * n,
            "n_tokens": [rng.randint(50, 500) for _ in range(n)],
            "subject": [SUBJECTS[j % len(SUBJECTS)] for j in range(n)],
            "level": [str(1 + j % 5) for j in range(n)],
        }
    )
    run = RunDir(out / rid)
    run.path.mkdir(parents=True)
    pq.write_table(table, run.path / "samples.parquet")
    method = ("base", "sft", "dpo", "step-dpo")[i % 4]
    m = {
        "run_id": rid,
        "status": "done",
        "created_at": f"2026-11-{1 + i % 28:02d}T00:00:00+00:00",
        "updated_at": "2026-11-22T00:00:00+00:00",
        "source": "stepdpo-bench",
        "model": {
            "name_or_path": f"/ckpt/model-{i:03d}",
            "fingerprint": f"{i:016x}",
            "label": f"model-{i:03d}",
            "method": method,
            "base_model": f"base-{i % 10}",
        },
        # one problem set per task, as real runs record it: the leaderboard tiers all 50 runs of a task together
        "task": {"name": task, "split": "test", "n_problems": n, "data_sha256": "0" * 64, "problems_sha": task * 4},
        "prompt": {"name": "qwen2-boxed"},
        "sampling": {"backend": "vllm", "temperature": 0.0, "top_p": 1.0, "max_tokens": 2048, "n": 1, "seed": 0},
        "grader_version": GRADER_VERSION,
        "code_version": "bench",
        "metrics": {
            "accuracy": sum(correct) / n,
            "stderr": 0.007,
            "ci95": [0.0, 1.0],
            "n_correct": sum(correct),
            "n_samples": n,
            "invalid_rate": 0.0,
            "truncation_rate": 0.0,
            "mean_tokens": 200.0,
        },
    }
    run.write_manifest(Manifest.from_dict(m))


def med_ms(fn, reps: int = 7) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "store")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    results = args.out / "results"
    results.mkdir(parents=True)
    rng = random.Random(0)
    t0 = time.perf_counter()
    for i in range(args.runs):
        synth_run(results, i, args.samples, rng)
    print(f"synthesised {args.runs} runs x {args.samples} samples in {time.perf_counter() - t0:.1f} s")

    db = args.out / "leaderboard.duckdb"
    t0 = time.perf_counter()
    rep = ingest(results, db)
    full = time.perf_counter() - t0
    assert len(rep.added) == args.runs, rep.skipped[:3]
    print(f"ingest of all {args.runs} runs: {full:.1f} s ({1000 * full / args.runs:.0f} ms per run)")

    synth_run(results, args.runs, args.samples, rng)  # one more run lands
    t0 = time.perf_counter()
    rep = ingest(results, db)
    one = time.perf_counter() - t0
    assert len(rep.added) == 1 and len(rep.unchanged) == args.runs
    t0 = time.perf_counter()
    ingest(results, db)
    noop = time.perf_counter() - t0

    con = connect(db, read_only=True)
    n_samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    lb_all = med_ms(lambda: leaderboard(con))
    lb_task = med_ms(lambda: leaderboard(con, "math"))
    con.close()
    data = Data(db)
    ids = list(data.runs("math").run_id[:2])
    cmp_ms = med_ms(lambda: data.compare(ids[0], ids[1]))

    print(f"index: {n_samples:,} sample rows")
    rows = [
        ("ingest one more 5000-sample run (into the full index)", 1000 * one, 2000),
        ("re-ingest with nothing new (idempotent scan)", 1000 * noop, None),
        ("leaderboard query, all tasks, with tiers", lb_all, 300),
        ("leaderboard query, one task, with tiers", lb_task, 300),
        ("compare query (paired diff, score test, subject/level breakdown)", cmp_ms, 300),
    ]
    w = max(len(r[0]) for r in rows)
    for name, ms, goal in rows:
        ratio = f"  {ms / goal:.2f} of the {goal} ms goal" if goal else ""
        print(f"{name:<{w}}  {ms:8.0f} ms{ratio}")
    (args.out / "figures.json").write_text(json.dumps({r[0]: r[1] for r in rows}, indent=1))


if __name__ == "__main__":
    main()
