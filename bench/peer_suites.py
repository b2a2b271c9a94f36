"""Our grader on a peer's test suite: every (gold, pred, expected) case in a Math-Verify checkout's ``tests/``.

    python bench/peer_suites.py --math-verify /path/to/Math-Verify [--all] [--show N]

Get the checkout with the search tool's ``fetch`` (github:huggingface/Math-Verify), then ``git archive HEAD | tar
-x -C DIR``.  Cases are read from the suite itself (``pytest.mark.parametrize`` tables and the literal calls in
``test_precision``), not copied here.  Both the gold and the prediction go through our extraction (the peer
parses both sides the same way), then our equivalence.  By default only cases that use Math-Verify's default
options count (float rounding 6, strict, no set/relation mixing); ``--all`` adds the rest.

Each disagreement is printed as **policy** (a deliberate rule of ours, explained in docs/grading.md; listed in
``POLICY`` below with the reason) or **ours-wrong** (a defect to fix).  The figures in docs/grading.md come from
this script.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepdpo_bench.grading import extract, extract_gold, grade_batch
from stepdpo_bench.grading.normalize import strip_delimiters

DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}

# Deliberate differences, by (gold, pred) as written in the suite.  Each names the rule in docs/grading.md.
_APPROX = "policy 1: a rounded decimal is not the exact value (the problem does not ask for a decimal)"
POLICY: dict[tuple[str, str], str] = {
    ("$\\frac{1}{3}$", "0.3333$"): _APPROX,
    ("$\\frac{1}{12}$", "$0.0833333333333333$"): _APPROX,
    (
        "$(\\begin{pmatrix}\\frac{1}{3}\\\\ \\frac{1}{5} \\end{pmatrix})$",
        "$\\begin{pmatrix}0.33\\\\0.2 \\end{pmatrix}$",
    ): _APPROX,
    ("$(\\frac{3}{5},\\frac{8}{3}]$", "$(0.6,2.6667]$"): _APPROX,
    ("$(1,3)$", "${1,3}$"): "shapes: braces around a list are a set (or, rendered, a bare list), never an ordered pair",
    ("$x \\in [-2,7]$", "$-2 \\\\le x \\\\le 7$"): "forms: an inequality is the set it describes (Math-Verify refuses "
    "set-vs-relation comparisons unless allow_set_relation_comp)",
    ("$\\\\boxed{35 cm} ++++++ \\\\boxed{4}$", "${35 cm,4}$"): "several boxes: boxes joined by '+' are not a list",
    ("\\\\boxed{W(n) = 1 \\\\text{ and } W(n) = -1", "W(x)=1orW(x)=-1"): "malformed gold (unclosed box), and the "
    "prediction names another function (W(x), not W(n))",
    ("$21,16$ or $11$", "$21,16,11$"): "several golds: 'or' between gold answers lists alternatives, not one list",
    ("$f(x)$", "$f(y)$"): "variables are not renamed (Math-Verify's strict=False option)",
    ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"): "the suite says 1 - 1/e = 1 + 1/e; they differ",
}


@dataclass
class Case:
    file: str
    test: str
    gold: str
    pred: str
    expected: bool
    options: dict

    @property
    def default_options(self) -> bool:
        return all(self.options.get(k, v) == v for k, v in DEFAULTS.items())


def _parametrize(dec: ast.expr) -> tuple[list[str], list] | None:
    """(argument names, rows) of a ``@pytest.mark.parametrize("a,b", [...])`` decorator with literal rows."""
    if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", None) == "parametrize" and len(dec.args) >= 2):
        return None
    try:
        names, rows = ast.literal_eval(dec.args[0]), ast.literal_eval(dec.args[1])
    except ValueError:
        return None
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    return names, rows


def _compare_calls(fn: ast.FunctionDef) -> list[ast.Call]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "compare_strings"]


def _literal_kwargs(call: ast.Call) -> dict:
    out = {}
    for kw in call.keywords:
        with contextlib.suppress(ValueError):  # a test parameter (precision=precision) is taken from the row
            out[kw.arg] = ast.literal_eval(kw.value)
    return out


def read_cases(checkout: Path) -> list[Case]:
    """Cases read from the suite's source with ``ast`` (the peer's code is never imported or run)."""
    cases: list[Case] = []
    for f in sorted((checkout / "tests").glob("test_*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")):
            calls = _compare_calls(fn)
            opts = _literal_kwargs(calls[0]) if calls else {}
            for dec in fn.decorator_list:
                table = _parametrize(dec)
                if table is None or "gold" not in table[0] or "pred" not in table[0]:
                    continue
                names, rows = table
                exp_key = "expected" if "expected" in names else "result"
                for values in rows:
                    row = dict(zip(names, values, strict=True))
                    row_opts = {**opts, **{k: row[k] for k in names if k in DEFAULTS}}
                    cases.append(
                        Case(f.name, fn.name, str(row["gold"]), str(row["pred"]), bool(row[exp_key]), row_opts)
                    )
            if not any(_parametrize(d) for d in fn.decorator_list):  # literal calls: assert compare_strings(...) == x
                for node in ast.walk(fn):
                    if isinstance(node, ast.Compare) and node.left in calls and len(node.left.args) >= 2:
                        try:
                            gold, pred = (ast.literal_eval(a) for a in node.left.args[:2])
                            expected = ast.literal_eval(node.comparators[0])
                        except ValueError:
                            continue
                        cases.append(Case(f.name, fn.name, gold, pred, bool(expected), _literal_kwargs(node.left)))
    return cases


def _gold_answer(text: str) -> str:
    """The peer extracts the gold like a prediction.  Boxed golds read as dataset golds do (``extract_gold``: the
    final "and"-joined group of boxes); others through our prediction chain, a group of spans joined by "and"
    kept whole; a bare gold such as ``9`` is itself the answer."""
    if "\\boxed" in text or "\\fbox" in text:
        return extract_gold(text, "math")
    ex = extract(text, "math")
    if ex.group:
        return ", ".join(ex.group)
    return ex.answer if ex.answer is not None else strip_delimiters(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--math-verify", type=Path, required=True, help="a Math-Verify checkout (its tests/ folder)")
    ap.add_argument("--all", action="store_true", help="include cases with non-default Math-Verify options")
    ap.add_argument("--show", type=int, default=200, help="print at most this many disagreements")
    args = ap.parse_args()
    cases = read_cases(args.math_verify)
    chosen = [c for c in cases if args.all or c.default_options]
    t0 = time.perf_counter()
    golds = [_gold_answer(c.gold) for c in chosen]
    grades = grade_batch([c.pred for c in chosen], golds, "math")  # what `eval` does with a completion
    elapsed = time.perf_counter() - t0
    per_file: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    wrong, policy = [], []
    for c, g, gr in zip(chosen, golds, grades, strict=True):
        per_file[c.file][1] += 1
        if gr.correct == c.expected:
            per_file[c.file][0] += 1
            continue
        row = (c, gr.pred, gr.method, g, gr.reason)
        (policy if (c.gold, c.pred) in POLICY else wrong).append(row)
    total = sum(t for _, t in per_file.values())
    agree = sum(a for a, _ in per_file.values())
    print(
        f"Math-Verify suite ({args.math_verify}): {len(cases)} cases, {len(chosen)} with "
        f"{'any' if args.all else 'default'} options, graded in {elapsed:.2f} s"
    )
    for f, (a, t) in sorted(per_file.items()):
        print(f"  {f:28s} {a:4d}/{t:<4d} {100 * a / t:5.1f}%")
    print(
        f"  {'all':28s} {agree:4d}/{total:<4d} {100 * agree / total:5.1f}%   "
        f"(policy {len(policy)}, ours-wrong {len(wrong)})"
    )
    for label, rows in (("ours-wrong", wrong), ("policy", policy)):
        for c, pa, method, g, reason in rows[: args.show]:
            why = POLICY.get((c.gold, c.pred), reason)
            print(f"\n[{label}] {c.file}::{c.test} expected {int(c.expected)}  ({why})")
            print(f"  gold {c.gold[:160]!r} -> {g!r}")
            print(f"  pred {c.pred[-160:]!r} -> {pa!r} via {method}")


if __name__ == "__main__":
    main()
