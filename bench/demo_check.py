"""Does a fresh machine's ``stepdpo-bench demo`` print the documented numbers?  CI runs this once (``.ci/run``).

Runs the newcomer's command (``stepdpo-bench demo --out OUT``, the default seed) in a subprocess, reads what it
measured (``OUT/summary.json``: the accuracies it printed), and compares each with ``docs/demo_expected.json``:
the numbers README and docs/demo.md state, and the tolerance measured for them (the largest difference seen
across thread counts and CPU kernel sets, plus the margin written there; see docs/demo.md, "Reproducibility").
Prints a table; exits 1 when any number leaves its tolerance, 2 when the demo itself failed.

    python bench/demo_check.py --out results/ci-demo
    python bench/demo_check.py --summary results/demo/summary.json     # check a finished run, no demo
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "docs" / "demo_expected.json"


def check(summary: dict, expected: dict) -> tuple[Table, bool]:
    tol = expected["tolerance_pts"]
    t = Table(title=f"demo (seed {expected['seed']}) against docs/demo_expected.json (tolerance ±{tol:g} pts)")
    for h in ("run", "expected %", "printed %", "difference", "within"):
        t.add_column(h, justify="left" if h == "run" else "right")
    ok = True
    for run, want in expected["accuracy"].items():
        got = summary["accuracy"].get(run)
        inside = got is not None and abs(100 * got - want) <= tol + 1e-9
        ok &= inside
        t.add_row(
            run,
            f"{want:.1f}",
            "-" if got is None else f"{100 * got:.1f}",
            "-" if got is None else f"{100 * got - want:+.1f}",
            "yes" if inside else "[bold red]NO[/]",
        )
    return t, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/ci-demo"))
    ap.add_argument("--summary", type=Path, help="check this summary.json instead of running the demo")
    args = ap.parse_args()
    expected = json.loads(EXPECTED.read_text())
    path = args.summary
    if path is None:
        cmd = ["stepdpo-bench", "demo", "--out", str(args.out), "--seed", str(expected["seed"])]
        print("$ " + " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            print("error: the demo itself failed (see above); nothing to compare", file=sys.stderr)
            return 2
        path = args.out / "summary.json"
    table, ok = check(json.loads(path.read_text()), expected)
    Console().print(table)
    if not ok:
        print(
            "error: the demo's numbers left the documented tolerance; if the recipe changed on purpose, re-measure "
            "and update docs/demo_expected.json, README and docs/demo.md together",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
