"""How stable is the demo's SFT stage?  Seeds x thread counts of ``trainer.demo.build_policy``, each model scored
greedily on arith validation (train problems 1500-1999, never fine-tuned on or mined) and on the 500 test
problems; prints every cell and, per thread count, the between-seed mean and SD (issue 27: aim for SD < 3 points
at a level where errors are still common).

    python bench/sft_spread.py --out results/sft-spread --seeds 0 1 2 3 4 --threads 1 2
    python bench/sft_spread.py --out results/sft-try --seeds 0 1 --set sft_lr=1e-3 sft_steps=1200

``--set`` overrides any ``DemoConfig`` field (the recipe under trial); every model is reused when complete, so a
killed run resumes.  Thread counts change how CPU reductions split, the same kind of last-bit difference another
CPU makes, so the spread across them is what a fresh machine should expect around this machine's numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainer.demo import DemoConfig, build_policy, greedy_accuracy, pinned  # noqa: E402

console = Console(stderr=True)
VALIDATION = [f"arith/train/{i}" for i in range(1500, 2000)]


def parse_set(items: list[str]) -> dict[str, object]:
    types = {f.name: f.type for f in fields(DemoConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--set {item}: DemoConfig has no field {key!r}")
        kind = str(types[key]).removesuffix(" | None")
        out[key] = {"int": int, "float": float, "str": str, "bool": lambda v: v in ("1", "true")}[kind](value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results/sft-spread")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--set", nargs="*", default=[], help="DemoConfig overrides, e.g. sft_lr=1e-3")
    args = ap.parse_args()
    over = parse_set(args.set)
    out = Path(args.out)
    cells: dict[tuple[int, int], dict[str, float]] = {}
    for threads in args.threads:
        for seed in args.seeds:
            cfg = replace(DemoConfig(), **over, seed=seed, threads=threads, out=str(out / f"t{threads}-s{seed}"))
            cell = Path(cfg.out) / "spread.json"
            if cell.is_file():
                cells[(threads, seed)] = json.loads(cell.read_text())
                continue
            t0 = time.perf_counter()
            with pinned(threads):
                sft_dir = build_policy(cfg, console)
                sft_s = time.perf_counter() - t0
                val = greedy_accuracy(sft_dir, VALIDATION)
                test = greedy_accuracy(sft_dir, None, cfg.test_problems)
            cells[(threads, seed)] = {"val": val, "test": test, "sft_s": sft_s}
            cell.write_text(json.dumps(cells[(threads, seed)]))
            console.print(f"threads {threads} seed {seed}: val {100 * val:.1f} test {100 * test:.1f}", highlight=False)
    t = Table(title=f"SFT greedy accuracy % ({', '.join(args.set) or 'the demo default'})")
    for h in ("threads", *(f"seed {s}" for s in args.seeds), "mean", "SD"):
        t.add_column(h, justify="right")
    for threads in args.threads:
        for split in ("val", "test"):
            xs = [100 * cells[(threads, s)][split] for s in args.seeds]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            t.add_row(f"{threads} ({split})", *(f"{x:.1f}" for x in xs), f"{statistics.mean(xs):.1f}", f"{sd:.1f}")
    if len(args.threads) > 1:
        for split in ("val", "test"):
            gaps = [
                abs(cells[(a, s)][split] - cells[(b, s)][split]) * 100
                for s in args.seeds
                for a, b in zip(args.threads, args.threads[1:], strict=False)
            ]
            t.caption = (t.caption or "") + f"{split}: largest same-seed gap across thread counts {max(gaps):.1f} pts. "
    Console().print(t)


if __name__ == "__main__":
    main()
