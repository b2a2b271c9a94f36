"""The demo experiment: ``stepdpo-bench demo`` with several seeds, summarised for docs/demo.md.

Each seed is a full, independent demo (model from scratch, SFT, pipeline, DPO and Step-DPO, evaluation) in
``OUT/seed-S``; a finished seed is reused.  Prints, per seed and pooled, SFT / DPO / Step-DPO accuracy on arith
test with paired differences (95% Tango CI, score-test p), the pairs built and the locators' exact-step accuracy.

    python bench/demo.py --seeds 0 1 2 --out results/demo-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path("results/demo-bench"))
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    summaries = {}
    for s in args.seeds:
        out = args.out / f"seed-{s}"
        if not (out / "summary.json").is_file():
            cmd = [sys.executable, "-m", "stepdpo_bench.cli", "demo", "--seed", str(s), "--out", str(out)]
            if args.data_dir:
                cmd += ["--data-dir", str(args.data_dir)]
            subprocess.run(cmd, check=True)
        summaries[s] = json.loads((out / "summary.json").read_text())
    print(
        "\n| seed | SFT % | DPO % | Step-DPO % | DPO - SFT | Step-DPO - SFT | Step-DPO - DPO | step pairs | demo min |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for s, m in summaries.items():
        acc = m["accuracy"]
        comp = {(c["a"], c["b"]): c for c in m["comparisons"]}

        def diff(a: str, b: str, comp: dict = comp) -> str:
            c = comp[(a, b)]
            return f"{100 * c['diff']:+.1f} [{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}] p={c['p_value']:.2g}"

        print(
            f"| {s} | {100 * acc['sft/arith']:.1f} | {100 * acc['dpo/arith']:.1f} | "
            f"{100 * acc['step-dpo/arith']:.1f} | {diff('sft', 'dpo')} | {diff('sft', 'step-dpo')} | "
            f"{diff('dpo', 'step-dpo')} | {m['funnel']['build']['step-dpo pairs']} | "
            f"{m['timings_s']['total_s'] / 60:.1f} |"
        )
    print("\n| seed | locator | solutions | located | exact / located | exact / all | samples spent |")
    print("|---|---|---|---|---|---|---|")
    for s, m in summaries.items():
        for name, o in m["locators"].items():
            print(
                f"| {s} | {name} | {o['solutions']} | {o['located']} | {o['exact_of_located'] or 0:.3f} | "
                f"{o['exact_of_all'] or 0:.3f} | {o['spent']:,} |"
            )
    print("\nfunnels:")
    for s, m in summaries.items():
        print(s, json.dumps(m["funnel"]))


if __name__ == "__main__":
    main()
