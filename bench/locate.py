"""Locator accuracy on ``arith``, where the true first wrong step is known exactly.

Reads the solutions the demo's SFT model wrote (``stepdpo-bench demo`` first), locates the first wrong step of
the first ``--solutions`` wrong ones with ``symbolic`` and with ``rollout`` at several m, and prints per
locator: how many it located, how many of those are the exact first wrong step (``arith.first_wrong_step``), and
the policy samples spent, against the m·n a linear scan over steps would spend.

    python bench/locate.py --demo results/demo --m 2 4 8 --solutions 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from trainer.demo import locator_accuracy
from trainer.pipeline.config import PipelineConfig
from trainer.pipeline.context import Pipeline
from trainer.pipeline.run import run_stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=Path("results/demo"))
    ap.add_argument("--m", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--solutions", type=int, default=200, help="wrong solutions located (the first N)")
    args = ap.parse_args()
    src = args.demo / "pairs"
    base = json.loads((src / "config.json").read_text())["config"]
    table = Table(title="First-wrong-step locators on arith (truth: exact)")
    for h in ("locator", "solutions", "located", "exact / located", "exact / all", "samples", "linear scan", "s"):
        table.add_column(h, justify="left" if h == "locator" else "right")

    for i, m in enumerate(args.m):
        out = args.demo / "bench_locate" / f"m{m}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "collect").symlink_to((src / "collect").resolve())
        shutil.copy(src / "collect.json", out / "collect.json")
        cfg = PipelineConfig(
            **{
                **base,
                "out": str(out),
                "locators": ["symbolic", "rollout"],
                "rollout_m": m,
                "compare_limit": args.solutions,
            }
        ).validate()
        t0 = time.perf_counter()
        run_stages(Pipeline(cfg, Console(stderr=True)), ["locate"])
        secs = time.perf_counter() - t0
        acc = locator_accuracy(out, same_as="rollout")
        for name in ("rollout",) if i else ("symbolic", "rollout"):
            o, mm = acc[name], m if name == "rollout" else 0
            table.add_row(
                name if not mm else f"rollout m={mm}",
                str(o["solutions"]),
                str(o["located"]),
                f"{o['exact_of_located'] or 0:.3f}",
                f"{o['exact_of_all'] or 0:.3f}",
                f"{o['spent']:,}",
                f"{mm * o['steps']:,}" if mm else "-",
                f"{secs:.0f}" if mm else "0",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
