"""Step locators against truths they did not make.

1. **arith**: every step's truth comes from the generator (``--locator exact``), independent of every other
   locator.  For each finished arith run under ``--results`` (``stepdpo-bench demo`` writes three), the symbolic
   locator's and (with ``--judge-base-url``) a judge's first wrong step are compared with it, per solution length:
   the share where the first wrong step is the same (no error on both sides counts), within one step, and of the
   solutions that truly have an error, the share where the locator found one.
2. **GSM8K gold**: the dataset authors' own solutions (test and train) should have no wrong step; the share of
   their steps the symbolic locator checks, and how many it calls wrong (each one printed: a slip in the data,
   or the locator's mistake).

    python bench/steps.py --results results/demo/results --data-dir ../shared/data
    python bench/steps.py ... --judge-model tiny --judge-base-url http://127.0.0.1:8000/v1

A tiny judge (a random-weights model behind ``vllm serve``) measures the plumbing only: its replies carry no
verdict, so they are counted as unparseable; a real judge model gives real agreement here.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stepdpo_bench.locators.symbolic import check_step
from stepdpo_bench.runs import RunDir, read_log
from stepdpo_bench.step_runs import VERDICTS_JSONL, LocatorSpec, locate_run


def _rows(run: RunDir, spec: LocatorSpec) -> dict[tuple[str, int], dict]:
    res = locate_run(run, spec)
    return {(r["problem_id"], int(r["sample_idx"])): r for r in read_log(res.path / VERDICTS_JSONL)}


def agreement(results: Path, specs: list[LocatorSpec], console: Console) -> None:
    runs = [RunDir(d) for d in sorted(results.iterdir()) if (d / "run.json").is_file()]
    runs = [r for r in runs if (m := r.manifest()) and m.done and m.task.name == "arith"]
    if not runs:
        console.print(f"no finished arith runs under {results}: run `stepdpo-bench demo` first")
        return
    table = Table(title="First wrong step vs arith's exact truth (all arith runs pooled)")
    for h in ("locator", "steps", "solutions", "same first step", "within one", "error found | has one", "outcomes"):
        table.add_column(h, justify="left" if h in ("locator", "outcomes") else "right")
    for spec in specs:
        by_len: dict[int, list[tuple[int | None, int | None]]] = defaultdict(list)
        outcomes: dict[str, int] = defaultdict(int)
        for run in runs:
            truth = _rows(run, LocatorSpec("exact"))
            got = _rows(run, spec)
            for key, t in truth.items():
                g = got.get(key)
                if g is None:
                    continue
                outcomes[g["outcome"]] += 1
                by_len[int(t["n_steps"])].append((t["first_wrong"], g["first_wrong"]))
        for n in [*sorted(by_len), "all"]:
            pairs = [p for k in sorted(by_len) for p in by_len[k]] if n == "all" else by_len[n]
            same = sum(t == g for t, g in pairs)
            near = sum(t == g or (t is not None and g is not None and abs(t - g) <= 1) for t, g in pairs)
            erred = [(t, g) for t, g in pairs if t is not None]
            found = sum(g is not None for _, g in erred)
            table.add_row(
                spec.display if n == "all" else "",
                str(n),
                str(len(pairs)),
                f"{100 * same / len(pairs):.1f}%",
                f"{100 * near / len(pairs):.1f}%",
                f"{100 * found / len(erred):.1f}% of {len(erred)}" if erred else "-",
                ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) if n == "all" else "",
            )
        table.add_section()
    console.print(table)


def gsm8k_gold(data_dir: Path, console: Console) -> None:
    stats = {}
    wrong: list[str] = []
    for split in ("test", "train"):
        path = data_dir / "gsm8k" / f"{split}.jsonl"
        if not path.is_file():
            console.print(f"{path}: not found; skipping GSM8K gold")
            return
        steps = checked = bad = 0
        for line in path.open(encoding="utf-8"):
            for step in json.loads(line)["answer"].split("\n"):
                if not step.strip() or step.startswith("####"):
                    continue
                steps += 1
                ok = check_step(step).ok
                checked += ok is not None
                if ok is False:
                    bad += 1
                    wrong.append(f"{split}: {step}")
        stats[split] = (steps, checked, bad)
    table = Table(title="The symbolic locator on GSM8K's gold solutions (they should have no wrong step)")
    for h in ("split", "steps", "checked", "called wrong"):
        table.add_column(h, justify="left" if h == "split" else "right")
    for split, (steps, checked, bad) in stats.items():
        table.add_row(
            split, f"{steps:,}", f"{checked:,} ({100 * checked / steps:.1f}%)", f"{bad} ({100 * bad / steps:.2f}%)"
        )
    console.print(table)
    console.print("Called wrong (a slip in the data, or the locator's mistake: read them):")
    for w in wrong:
        console.print(f"  {w}", markup=False, highlight=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results/demo/results"))
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--judge-model")
    ap.add_argument("--judge-base-url", action="append", default=[])
    args = ap.parse_args()
    console = Console()
    specs = [LocatorSpec("symbolic")]
    if args.judge_model and args.judge_base_url:
        specs.append(LocatorSpec("judge", args.judge_model, args.judge_base_url, judge_max_tokens=64).check())
    else:
        console.print("judge: not measured (give --judge-model and --judge-base-url)")
    agreement(args.results, specs, console)
    gsm8k_gold(args.data_dir, console)


if __name__ == "__main__":
    main()
