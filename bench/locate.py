"""Locator accuracy on ``arith``, where the true first wrong step is known exactly.

Reads the solutions the demo's SFT model wrote (``stepdpo-bench demo`` first), locates their first wrong step
with ``symbolic`` and with ``rollout`` at several m, and prints per locator: how many it located, how many of
those are the exact first wrong step (``arith.first_wrong_step``), and the policy samples spent, against the
m·n a linear scan over steps would spend.

    python bench/locate.py --demo results/demo --m 2 4 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stepdpo_bench.tasks import arith
from trainer.pipeline.config import PipelineConfig
from trainer.pipeline.context import Pipeline
from trainer.pipeline.run import run_stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=Path("results/demo"))
    ap.add_argument("--m", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()
    src = args.demo / "pairs"
    base = json.loads((src / "config.json").read_text())["config"]
    problems = {p.id: p for p in arith.generate("train").problems}
    table = Table(title="First-wrong-step locators on arith (truth: exact)")
    for h in ("locator", "solutions", "located", "exact / located", "exact / all", "samples", "linear scan", "s"):
        table.add_column(h, justify="left" if h == "locator" else "right")
    for name, m in [("symbolic", 0)] + [("rollout", m) for m in args.m]:
        out = args.demo / "bench_locate" / f"{name}-m{m}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "collect").symlink_to((src / "collect").resolve())
        shutil.copy(src / "collect.json", out / "collect.json")
        cfg = PipelineConfig(**{**base, "out": str(out), "locators": [name], "rollout_m": max(m, 1)}).validate()
        pipe = Pipeline(cfg, Console(stderr=True))
        t0 = time.perf_counter()
        run_stages(pipe, ["locate"])
        secs = time.perf_counter() - t0
        sols = {s.key: s for s in Pipeline(cfg).wrong_solutions()}
        rows = [json.loads(x) for x in (out / "located.jsonl").read_text().splitlines()]
        located = exact = spent = scan = 0
        for r in rows:
            steps = sols[r["key"]].steps
            truth = arith.first_wrong_step(problems[r["problem_id"]], steps)
            spent += r.get("spent", 0)
            scan += m * len(steps)
            if r["step"] is not None:
                located += 1
                exact += r["step"] == truth
        table.add_row(name if not m else f"rollout m={m}", str(len(rows)), str(located),
                      f"{exact / max(located, 1):.3f}", f"{exact / max(len(rows), 1):.3f}", f"{spent:,}",
                      f"{scan:,}" if m else "-", f"{secs:.0f}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
