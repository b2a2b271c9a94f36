"""The paper layout of a suite: one row per model (and setting), one column per set, plus the macro average.

``stepdpo-bench leaderboard --suite reasoning`` and the app's Leaderboard page read the same rows.  Each cell is
a set's accuracy (avg@n when the run sampled n per problem) with its 95% interval, as the run reported it.  The
macro average is the unweighted mean over the sets the model has, with an interval from the sets' standard errors
(the sets are independent samples of problems: var = sum of se^2 / S^2 with each set's se read off its interval's
half-width, normal, clipped to [0, 1]); a row missing
a set says how many it has, and a row built from subset runs (``--limit``) says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .leaderboard import safe_cell
from .metrics import Z95
from .tasks import SUITES


@dataclass
class SuiteCell:
    accuracy: float
    ci: tuple[float, float]
    n_problems: int
    subset: bool
    run_id: str
    at_k: dict[str, Any] = field(default_factory=dict)  # the run's avg@k / pass@k / maj@k with intervals


@dataclass
class SuiteRow:
    label: str
    model: str
    prompt: str
    n: int
    temperature: float
    cells: dict[str, SuiteCell] = field(default_factory=dict)

    def macro(self, sets: tuple[str, ...]) -> tuple[float | None, tuple[float, float] | None]:
        have = [self.cells[s] for s in sets if s in self.cells]
        if not have:
            return None, None
        mean = sum(c.accuracy for c in have) / len(have)
        # each set's interval read as a standard error (its half-width / z), so a set that scored 0 of 30 brings
        # its Wilson width, not the zero standard error of a normal interval
        if any(c.ci[0] is None or c.ci[1] is None for c in have):
            return mean, None
        ses = [(c.ci[1] - c.ci[0]) / (2 * Z95) for c in have]
        se = math.sqrt(sum(s * s for s in ses)) / len(have)
        return mean, (max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se))


def suite_rows(board: list[dict[str, Any]], suite: str) -> tuple[tuple[str, ...], list[SuiteRow]]:
    """Leaderboard rows (``leaderboard.leaderboard``) of the suite's sets, one row per model and setting."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    sets = SUITES[suite]
    rows: dict[tuple, SuiteRow] = {}
    for r in board:
        if r["task"] not in sets:
            continue
        key = (r["model"], r["prompt"], r["n"], r["temperature"], r["label"])
        row = rows.setdefault(key, SuiteRow(r["label"], r["model"], r["prompt"], r["n"], r["temperature"]))
        at_k = json.loads(r["at_k"]) if isinstance(r.get("at_k"), str) else r.get("at_k") or {}
        cell = SuiteCell(r["accuracy"], (r["ci_lo"], r["ci_hi"]), r["n_problems"], bool(r["subset"]), r["run_id"], at_k)
        old = row.cells.get(r["task"])
        if (
            old is None
            or (old.subset and not cell.subset)
            or (old.subset == cell.subset and cell.n_problems > old.n_problems)
        ):
            row.cells[r["task"]] = cell  # the whole set over a subset of it
    ordered = sorted(rows.values(), key=lambda x: -(x.macro(sets)[0] or -1))
    return sets, ordered


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def cell_text(acc: float | None, ci: tuple[float, float] | None) -> str:
    if acc is None:
        return "-"
    return _pct(acc) + (f" [{_pct(ci[0])}–{_pct(ci[1])}]" if ci else "")


def _model_text(row: SuiteRow, sets: tuple[str, ...]) -> str:
    notes = []
    have = sum(s in row.cells for s in sets)
    if have < len(sets):
        notes.append(f"{have}/{len(sets)} sets")
    if any(c.subset for c in row.cells.values()):
        notes.append("subset runs")
    return row.label + (f" ({', '.join(notes)})" if notes else "")


def setting_text(row: SuiteRow) -> str:
    return f"{row.prompt}, " + (
        f"avg@{row.n}, T {row.temperature:g}"
        if row.n > 1
        else "greedy"
        if not row.temperature
        else f"T {row.temperature:g}"
    )


def render_suite(sets: tuple[str, ...], rows: list[SuiteRow], fmt: str = "table") -> Any:
    """The suite as a rich Table, or csv / json / markdown text."""
    import csv
    import io

    heads = ["model", "setting", *sets, "macro avg"]
    if fmt == "json":
        out = []
        for r in rows:
            mean, ci = r.macro(sets)
            out.append(
                {
                    "label": r.label,
                    "model": r.model,
                    "prompt": r.prompt,
                    "n": r.n,
                    "temperature": r.temperature,
                    "sets": {
                        s: {
                            "at_k": c.at_k,
                            "accuracy": c.accuracy,
                            "ci95": list(c.ci),
                            "n_problems": c.n_problems,
                            "subset": c.subset,
                            "run_id": c.run_id,
                        }
                        for s, c in r.cells.items()
                    },
                    "macro": {"accuracy": mean, "ci95": list(ci) if ci else None, "n_sets": len(r.cells)},
                }
            )
        return json.dumps(out, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(
            ["label", "model", "prompt", "n", "temperature"]
            + [f"{s}{x}" for s in (*sets, "macro") for x in ("", "_ci_lo", "_ci_hi")]
        )
        for r in rows:
            vals: list[Any] = [safe_cell(r.label), safe_cell(r.model), safe_cell(r.prompt), r.n, r.temperature]
            for s in sets:
                c = r.cells.get(s)
                vals += [c.accuracy, c.ci[0], c.ci[1]] if c else ["", "", ""]
            mean, ci = r.macro(sets)
            vals += [mean, *(ci or ("", ""))]
            w.writerow([round(v, 6) if isinstance(v, float) else v for v in vals])
        return buf.getvalue()
    body = []
    for r in rows:
        cells = [cell_text(r.cells[s].accuracy, r.cells[s].ci) if s in r.cells else "-" for s in sets]
        body.append([_model_text(r, sets), setting_text(r), *cells, cell_text(*r.macro(sets))])
    if fmt == "markdown":
        lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in b) + " |" for b in body]
        return "\n".join(lines)
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Suite: accuracy % [95% CI] per set (avg@n when sampled), macro average over the sets")
    for h in heads:
        table.add_column(h, justify="left" if h in ("model", "setting") else "right")
    for b in body:
        table.add_row(*(Text(c) for c in b))
    return table
