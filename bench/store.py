"""Leaderboard store at scale: 200 runs x 5000 samples (1M sample rows) synthesised as real run files.

    python bench/store.py [--runs 200] [--samples 5000] [--out bench/out/store]
    python bench/store.py --long [--runs 26]

Times, on the full index: ingest of everything, ingest of one more 5000-sample run (goal < 2 s), the
leaderboard query with tiers (goal < 300 ms) and the paired compare query behind the app's Compare page
(goal < 300 ms).  Each query figure is the median of 7 runs after one warm-up; it prints ratios to the goals.

``--long``: a reasoning model's runs, 30 problems x 64 samples each (26 runs: ~50,000 samples), every sample a
30-40k-character completion (a thinking trace plus a short answer).  The full ingest runs in a child process so
its peak RSS is its own (goal: streaming, under 1.5 GB); then one more such run (goal < 2 s), the leaderboard
(goal < 300 ms) and the query behind the Samples page for one long sample of two runs (goal well under 1 s; the
browser test times the page itself).
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


WORDS = ("so", "let", "me", "check", "the", "sum", "again", "wait", "then", "x", "=", "+", "2", "7", "13", "hence")
LONG_PROBLEMS, LONG_SAMPLES = 30, 64


def _trace_pool(rng: random.Random) -> str:
    """Text to cut traces from: 400k characters of thinking-like words (each trace a random window of it)."""
    out, size = [], 0
    while size < 400_000:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def synth_run(out: Path, i: int, n: int, rng: random.Random, pool: str | None = None) -> None:
    """One run's files; with ``pool`` a reasoning model's run (30 problems x 64 samples, 30-40k characters)."""
    long = pool is not None
    task = "aime24" if long else TASKS[i % len(TASKS)]
    n = LONG_PROBLEMS * LONG_SAMPLES if long else n
    rid = f"model-{i:03d}__{task}__{i:012x}"
    acc = rng.uniform(0.2, 0.8)
    correct = [rng.random() < acc for _ in range(n)]
    steps = [
        [f"Step {k}: {rng.randint(1, 99)} + {rng.randint(1, 99)} = {rng.randint(1, 199)}" for k in range(1, 5)]
        for _ in range(n)
    ]
    traces = None
    if long:
        cuts = [(rng.randrange(0, 400_000 - 40_000), rng.randint(28_000, 38_000)) for _ in range(n)]
        traces = [pool[a : a + k] for a, k in cuts]
    pid = (lambda j: f"{task}/{j // LONG_SAMPLES}") if long else (lambda j: f"{task}/test/{j}")
    table = pa.table(
        {
            "run_id": [rid] * n,
            "problem_id": [pid(j) for j in range(n)],
            "sample_idx": [j % LONG_SAMPLES if long else 0 for j in range(n)],
            "prompt": [f"Problem {j}: what is the value?" for j in range(n)],
            "completion": [("\n".join(s) + "\nThe answer is: 7") * (40 if long else 1) for s in steps],
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
    if traces is not None:  # a thinking trace apart from the answer, as evaluate stores it
        table = table.append_column("reasoning", pa.array(traces, pa.string()))
        table = table.append_column("reasoning_tokens", pa.array([len(t) // 4 for t in traces], pa.int32()))
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
        "task": {
            "name": task,
            "split": "test",
            "n_problems": LONG_PROBLEMS if long else n,
            "data_sha256": "0" * 64,
            "problems_sha": task * 4,
        },
        "prompt": {"name": "qwen2-boxed"},
        "sampling": {
            "backend": "vllm",
            "temperature": 0.6 if long else 0.0,
            "top_p": 0.95 if long else 1.0,
            "max_tokens": 32768 if long else 2048,
            "n": LONG_SAMPLES if long else 1,
            "seed": 0,
        },
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
    ap.add_argument("--runs", type=int, default=None, help="default 200 (26 with --long)")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--long", action="store_true", help="reasoning runs: 30 x 64 samples of 30-40k characters")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "store")
    args = ap.parse_args()
    if args.long:
        return main_long(args)
    args.runs = args.runs or 200
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


INGEST_CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[3])
from stepdpo_bench.store import ingest
t0 = time.perf_counter()
rep = ingest(sys.argv[1], sys.argv[2])
print("FIGURES", len(rep.added), time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main_long(args: argparse.Namespace) -> None:
    import subprocess

    if args.out.exists():
        shutil.rmtree(args.out)
    results = args.out / "results"
    results.mkdir(parents=True)
    runs = args.runs or 26
    rng = random.Random(0)
    pool = _trace_pool(rng)
    t0 = time.perf_counter()
    for i in range(runs):
        synth_run(results, i, 0, rng, pool)
    size = sum(f.stat().st_size for f in results.rglob("samples.parquet"))
    n = runs * LONG_PROBLEMS * LONG_SAMPLES
    print(
        f"synthesised {runs} runs x {LONG_PROBLEMS * LONG_SAMPLES} samples ({n:,} samples of 30-40k characters, "
        f"{size / 1e9:.2f} GB of parquet) in {time.perf_counter() - t0:.1f} s"
    )
    db = args.out / "leaderboard.duckdb"
    res = subprocess.run(
        [sys.executable, "-c", INGEST_CHILD, str(results), str(db), str(HERE.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    _, added, full, rss_kb = next(x for x in res.stdout.splitlines() if x.startswith("FIGURES")).split()
    assert int(added) == runs, res.stdout + res.stderr
    synth_run(results, runs, 0, rng, pool)
    t0 = time.perf_counter()
    rep = ingest(results, db)
    one = time.perf_counter() - t0
    assert len(rep.added) == 1
    con = connect(db, read_only=True)
    text_gb = con.execute("SELECT sum(length(reasoning) + length(completion)) FROM samples").fetchone()[0] / 1e9
    lb = med_ms(lambda: leaderboard(con))
    con.close()
    data = Data(db)
    a, b = list(data.runs("aime24").run_id[:2])
    sample_ms = med_ms(lambda: data.problem([a, b], "aime24/7"))
    rows = [
        (f"ingest of all {runs} runs ({text_gb:.2f} GB of text in the index), child process", 1000 * float(full), None),
        (f"peak RSS of that ingest: {int(rss_kb) / 1024:.0f} MB", int(rss_kb) / 1024, 1536),
        ("ingest one more 30 x 64-sample run", 1000 * one, 2000),
        ("leaderboard query, all tasks, with tiers", lb, 300),
        ("Samples page query: one long sample of two runs", sample_ms, 1000),
    ]
    w = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        unit = "MB" if name.startswith("peak") else "ms"
        ratio = f"  {value / goal:.2f} of the {goal} {unit} goal" if goal else ""
        print(f"{name:<{w}}  {value:8.0f} {unit}{ratio}")
    (args.out / "figures-long.json").write_text(json.dumps({r[0]: r[1] for r in rows}, indent=1))


if __name__ == "__main__":
    main()
