"""Grader benchmark: our grader vs math-verify (the anchor) on the same labelled pairs, in one process.

    python bench/grader.py [--data-dir ../shared/data] [--out bench/out] [--per-task 160]

    python bench/grader.py --math-verify /path/to/Math-Verify   # + the labelled cases we did not write

Prints accuracy, false-positive and false-negative rates, throughput (pairs/second) and worst-case latency for
both graders, the ratio between them, the MATH-500 gold self-check time, a pathological batch (2,000 samples, 20
of them two distinct size-explosive answers), and writes every pair where the two disagree (with the label) to
``OUT/grader_disagreements.jsonl``.  math-verify is called the way its README shows: ``verify(parse(gold),
parse(pred))`` with each answer wrapped in ``\\boxed{}`` so its extractor finds it.

Sources, reported separately: ``ours`` (rewrites of real golds whose label is known by construction; we wrote
the rules, so it measures coverage), and with ``--math-verify``: ``math-verify-suite`` (the peer's own labelled
test cases, default options; bench/peer_suites.py lists each disagreement) and ``qwen2.5-math`` (the examples in
Qwen2.5-Math's ``evaluation/grader.py``, labelled as Math-Verify's suite labels the same pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grader_pairs import build_pairs

from stepdpo_bench.grading import extract_gold, is_equivalent, is_equivalent_batch
from stepdpo_bench.grading.isolation import shared_pool

console = Console(width=140)


@dataclass
class Scores:
    name: str
    verdicts: list[bool]
    wall_s: float
    worst_s: float
    worst_pair: str

    def stats(self, labels: list[bool]) -> dict[str, float]:
        pos = sum(labels)
        neg = len(labels) - pos
        fp = sum(v and not lab for v, lab in zip(self.verdicts, labels, strict=True))
        fn = sum(lab and not v for v, lab in zip(self.verdicts, labels, strict=True))
        return {
            "accuracy": 1 - (fp + fn) / len(labels),
            "fpr": fp / max(neg, 1),
            "fnr": fn / max(pos, 1),
            "fp": fp,
            "fn": fn,
            "pairs_per_s": len(labels) / self.wall_s,
            "worst_s": self.worst_s,
        }


def run_ours_sequential(pairs: list[dict]) -> Scores:
    """One ``is_equivalent`` call at a time: per-pair latency including the worker round trip."""
    worst, worst_pair, out = 0.0, "", []
    t0 = time.perf_counter()
    for p in pairs:
        t = time.perf_counter()
        out.append(bool(is_equivalent(p["pred"], p["gold"], p["task"])))
        dt = time.perf_counter() - t
        if dt > worst:
            worst, worst_pair = dt, f"{p['pred']!r} vs {p['gold']!r}"
    return Scores("stepdpo-bench (sequential)", out, time.perf_counter() - t0, worst, worst_pair)


def run_ours_batch(pairs: list[dict]) -> Scores:
    """``is_equivalent_batch`` per task: the way the harness grades (symbolic work over all cores)."""
    out: dict[int, bool] = {}
    t0 = time.perf_counter()
    for task in sorted({p["task"] for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p["task"] == task]
        verdicts = is_equivalent_batch([(pairs[i]["pred"], pairs[i]["gold"]) for i in idx], task)
        out.update({i: bool(v) for i, v in zip(idx, verdicts, strict=True)})
    wall = time.perf_counter() - t0
    return Scores(
        f"stepdpo-bench (batch, {os.cpu_count()} workers)", [out[i] for i in range(len(pairs))], wall, float("nan"), ""
    )


def run_math_verify(pairs: list[dict]) -> Scores:
    from math_verify import parse, verify

    worst, worst_pair, out = 0.0, "", []
    t0 = time.perf_counter()
    for p in pairs:
        t = time.perf_counter()
        try:
            ok = bool(verify(parse("\\boxed{" + p["gold"] + "}"), parse("\\boxed{" + p["pred"] + "}")))
        except Exception:
            ok = False
        out.append(ok)
        dt = time.perf_counter() - t
        if dt > worst:
            worst, worst_pair = dt, f"{p['pred']!r} vs {p['gold']!r}"
    return Scores("math-verify", out, time.perf_counter() - t0, worst, worst_pair)


def outside_pairs(checkout: Path) -> list[dict]:
    """Labelled (pred, gold) pairs written by others: the Math-Verify suite's default-option cases.  The answers
    are extracted from the peer's strings the way ``bench/peer_suites.py`` does, so only equivalence is tested."""
    from peer_suites import POLICY, _gold_answer, read_cases

    from stepdpo_bench.grading import extract
    from stepdpo_bench.grading.normalize import is_list_text

    out = []
    for c in read_cases(checkout):
        if not c.default_options:
            continue
        gold, ex = _gold_answer(c.gold), extract(c.pred, "math")
        pred = ", ".join(ex.group) if ex.group and is_list_text(gold) else ex.answer or c.pred  # as grade() reads it
        source = "qwen2.5-math" if c.test == "test_complex_math_expressions" else "math-verify-suite"
        out.append(
            {
                "pred": pred,
                "gold": gold,
                "task": "math",
                "label": c.expected,
                "source": source,
                "policy": (c.gold, c.pred) in POLICY,
            }
        )
    return out


def pathological_batch() -> tuple[float, int]:
    """2,000 samples of which 20 are two distinct size-explosive answers: seconds to grade, and how many verdicts
    came from a timeout (the goal: none; they are decided structurally)."""
    from stepdpo_bench.grading import grade_batch

    completions = [f"The answer is $\\boxed{{{i % 97}}}$." for i in range(1980)]
    completions += ["so $\\boxed{10^{10^{10^{10}}}}$"] * 10 + ["so $\\boxed{9!!!!!!!!}$"] * 10
    golds = [str(i % 89) for i in range(1980)] + ["3"] * 20
    t0 = time.perf_counter()
    grades = grade_batch(completions, golds, "math")
    return time.perf_counter() - t0, sum("timeout" in g.reason for g in grades)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    ap.add_argument("--data-dir", type=Path, default=here.parent.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=here / "out")
    ap.add_argument("--per-task", type=int, default=160)
    ap.add_argument("--math-verify", type=Path, help="a Math-Verify checkout: add its labelled suite cases")
    args = ap.parse_args()

    pairs = [{**p, "source": "ours"} for p in build_pairs(args.data_dir, per_task=args.per_task)]
    if args.math_verify:
        pairs += outside_pairs(args.math_verify)
    labels = [p["label"] for p in pairs]
    console.print(
        f"{len(pairs)} labelled pairs ({sum(labels)} equivalent, {len(labels) - sum(labels)} not): ours "
        "(MATH-500, GSM8K, Odyssey-MATH golds, rewrites + hand-written)"
        + (" + Math-Verify's suite" if args.math_verify else "")
    )

    shared_pool().map([{"pred": "x", "gold": "y", "task": "math"}])  # start workers outside the timings
    runs = [run_ours_sequential(pairs), run_ours_batch(pairs), run_math_verify(pairs)]

    table = Table(title="Grader accuracy and speed (same pairs, same process)")
    for col in ("grader", "accuracy", "false pos. rate", "false neg. rate", "FP", "FN", "pairs/s", "worst latency"):
        table.add_column(col, justify="right" if col != "grader" else "left")
    stats = {r.name: r.stats(labels) for r in runs}
    for r in runs:
        s = stats[r.name]
        worst = "n/a (batched)" if s["worst_s"] != s["worst_s"] else f"{s['worst_s'] * 1000:.0f} ms"
        table.add_row(
            r.name,
            f"{s['accuracy']:.4f}",
            f"{s['fpr']:.4f}",
            f"{s['fnr']:.4f}",
            str(s["fp"]),
            str(s["fn"]),
            f"{s['pairs_per_s']:.0f}",
            worst,
        )
    console.print(table)
    by_source = Table(title="Accuracy by source (stepdpo-bench batch vs math-verify)")
    for col in ("source", "pairs", "ours acc", "ours FP", "ours FN", "math-verify acc", "mv FP", "mv FN"):
        by_source.add_column(col, justify="right" if col != "source" else "left")
    for src in sorted({p["source"] for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p["source"] == src]
        lab = [labels[i] for i in idx]
        cells = []
        for r in (runs[1], runs[2]):
            sub = Scores(r.name, [r.verdicts[i] for i in idx], 1.0, 0.0, "").stats(lab)
            cells += [f"{sub['accuracy']:.4f}", str(sub["fp"]), str(sub["fn"])]
        by_source.add_row(src, str(len(idx)), *cells)
    console.print(by_source)
    if args.math_verify:
        n_policy = sum(1 for p in pairs if p.get("policy"))
        console.print(f"({n_policy} suite pairs are deliberate policy differences, explained in docs/grading.md)")
    seconds, timeouts = pathological_batch()
    console.print(
        f"pathological batch: 2,000 samples (20 size-explosive, 2 distinct) graded in {seconds:.2f} s, "
        f"{timeouts} verdicts by timeout"
    )
    ours, mv = stats[runs[1].name], stats["math-verify"]
    console.print(
        f"throughput ratio, ours (batch) / math-verify: {ours['pairs_per_s'] / mv['pairs_per_s']:.1f}x; "
        f"sequential / math-verify: {stats[runs[0].name]['pairs_per_s'] / mv['pairs_per_s']:.1f}x"
    )
    for r in (runs[0], runs[2]):
        console.print(f"worst case, {r.name}: {r.worst_s * 1000:.0f} ms on {r.worst_pair[:100]}", markup=False)

    # MATH-500 gold set: every gold against its solution's last box
    rows = [json.loads(x) for x in (args.data_dir / "math500" / "test.jsonl").open(encoding="utf-8")]
    t0 = time.perf_counter()
    gold_ok = is_equivalent_batch([(r["answer"], extract_gold(r["solution"], "math")) for r in rows], "math")
    console.print(
        f"MATH-500 golds vs their solutions' boxes: {sum(map(bool, gold_ok))}/500 equal "
        f"in {time.perf_counter() - t0:.2f} s"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    dis_path = args.out / "grader_disagreements.jsonl"
    n_dis = 0
    with dis_path.open("w", encoding="utf-8") as f:
        for p, a, b in zip(pairs, runs[0].verdicts, runs[2].verdicts, strict=True):
            if a != b:
                n_dis += 1
                f.write(json.dumps({**p, "ours": a, "math_verify": b}, ensure_ascii=False) + "\n")
    console.print(f"{n_dis} pairs where the graders disagree -> {dis_path}")
    dis = [json.loads(x) for x in dis_path.open(encoding="utf-8")]
    t = Table(title="Disagreements (first 40)")
    for col in ("task", "pred", "gold", "label", "ours", "math-verify"):
        t.add_column(col, overflow="fold")
    for d in dis[:40]:
        t.add_row(d["task"], d["pred"], d["gold"], str(d["label"]), str(d["ours"]), str(d["math_verify"]))
    console.print(t)


if __name__ == "__main__":
    main()
