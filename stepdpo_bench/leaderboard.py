"""Leaderboard queries over the index: latest finished run per (model, task, problem set, prompt, sampling), with
tiers.  A run on a subset (``--limit``, ``--subjects``, ``--levels``) is its own row, marked as a subset in every view.

Shared by ``stepdpo-bench leaderboard`` and the app, so the terminal and the browser show the same ranking.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .compare import tiers

LEADERBOARD_SQL = """
WITH superseded_runs AS (
    SELECT json_extract_string(manifest, '$.regraded_from') AS superseded FROM runs
    WHERE json_extract_string(manifest, '$.regraded_from') IS NOT NULL
)
SELECT run_id, label, model, method, base_model, task, prompt, backend, n, temperature, n_problems,
       accuracy, ci_lo, ci_hi, stderr, invalid_rate, truncation_rate, mean_tokens, grader_version, source,
       created_at, tags, json_extract_string(metrics, '$.extraction') AS extraction, subset, filters, lenient
FROM runs
WHERE status = 'done'
  AND run_id NOT IN (SELECT superseded FROM superseded_runs)  -- a re-graded run replaces its original
  AND (? IS NULL OR task = ?)
  AND (? IS NULL OR list_contains(tags, ?))
QUALIFY row_number() OVER (PARTITION BY model, fingerprint, task, prompt, backend, n, temperature, max_tokens,
                                        data_sha256, problems_sha, lenient  -- a different problem set is another row
                           ORDER BY created_at DESC, updated_at DESC) = 1
ORDER BY task, accuracy DESC, label
"""


def leaderboard(con: Any, task: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
    """Rows best-first within each task, each with a ``tier``: runs not significantly worse (paired, on the
    problems they share) than the best run of the current tier share its tier."""
    cur = con.execute(LEADERBOARD_SQL, [task, task, tag, tag])
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        r["filters"] = json.loads(r["filters"]) if isinstance(r.get("filters"), str) else r.get("filters") or {}
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    all_ids = [r["run_id"] for r in rows]
    matrix = score_matrix(con, all_ids)  # one scan of the samples for every task
    position = {rid: i for i, rid in enumerate(all_ids)}
    for task_rows in by_task.values():
        ids = [r["run_id"] for r in task_rows]
        t = tiers(ids, matrix[[position[i] for i in ids]])
        for r in task_rows:
            r["tier"] = t[r["run_id"]]
    return rows


def subset_note(row: dict[str, Any]) -> str:
    """``subset: subjects=Geometry, limit=4`` for a run on part of a task, ``""`` for the whole task."""
    if not row.get("subset"):
        return ""
    filters = row.get("filters")
    filters = json.loads(filters) if isinstance(filters, str) else filters or {}
    parts = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in filters.items()
        if v not in (None, [], "")
    ]
    return "subset: " + ", ".join(parts) if parts else "subset"


def extraction_summary(extraction: Any, top: int = 3) -> str:
    """``boxed 92% · last-math 5% · none 3%``: how a run's answers were found (fallbacks show up here)."""
    shares = json.loads(extraction) if isinstance(extraction, str) else extraction or {}
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
    return " · ".join(f"{m} {100 * v:.0f}%" for m, v in ranked) if ranked else "-"


def score_matrix(con: Any, run_ids: list[str]) -> np.ndarray:
    """Per-problem mean correctness as a (runs x problems) array, NaN where a run did not answer a problem.
    Built in DuckDB and numpy (one query, no per-row Python) so tiers stay fast on 1M-sample indexes."""
    q = "SELECT list_position(?, run_id) - 1 AS r, pkey, score FROM problem_scores WHERE list_contains(?, run_id)"
    res = con.execute(q, [run_ids, run_ids]).fetchnumpy()
    keys, cols = np.unique(res["pkey"], return_inverse=True)
    m = np.full((len(run_ids), len(keys)), np.nan)
    m[res["r"].astype(int), cols] = res["score"].astype(float)
    return m


COLUMNS = (
    "task",
    "tier",
    "label",
    "method",
    "base_model",
    "accuracy",
    "ci_lo",
    "ci_hi",
    "n_problems",
    "subset",
    "filters",
    "n",
    "prompt",
    "source",
    "tags",
    "created_at",
    "run_id",
)
_HEADS = (
    "task",
    "tier",
    "model",
    "method",
    "base",
    "acc %",
    "95% CI %",
    "problems",
    "samples/problem",
    "prompt",
    "source",
    "date",
)


def _round(x: Any) -> Any:
    """Floats for machine output: 6 decimals, tiny rounding noise to 0 (never ``2.7755575615628914e-17``)."""
    return round(x, 6) + 0.0 if isinstance(x, float) and x == x else x


def _cell(x: Any) -> Any:
    """A CSV cell: lists and mappings as JSON (``["dpo"]``, never Python's ``['dpo']``), floats rounded."""
    return json.dumps(x) if isinstance(x, list | dict) else _round(x)


def safe_cell(value: Any) -> Any:
    """A spreadsheet cell that cannot run: text starting with ``= + - @`` (or tab/CR) gets a leading quote, the
    OWASP defence against formula injection in CSV downloads.  Numbers are left as numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render(rows: list[dict[str, Any]], fmt: str = "table") -> Any:
    """The leaderboard as a rich Table (``table``) or text (``csv``, ``json``, ``markdown``)."""
    import csv
    import io

    from .reports import pct

    if fmt not in ("table", "csv", "json", "markdown"):
        raise ValueError(f"unknown format {fmt!r}; use table, csv, json or markdown")
    if fmt == "json":
        return json.dumps([{c: _round(r.get(c)) for c in COLUMNS} for r in rows], default=str, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(COLUMNS)
        w.writerows([[safe_cell(_cell(r.get(c))) for c in COLUMNS] for r in rows])
        return buf.getvalue()
    show = [
        (
            r["task"] + (f" ({subset_note(r)})" if r.get("subset") else ""),
            str(r["tier"]),
            r["label"],
            r["method"] or "",
            r["base_model"] or "",
            pct(r["accuracy"]),
            f"{pct(r['ci_lo'])}–{pct(r['ci_hi'])}",
            str(r["n_problems"]),
            str(r["n"]),
            r["prompt"] or "",
            r["source"] or "",
            str(r["created_at"])[:10],
        )
        for r in rows
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(_HEADS) + " |", "|" + "|".join("---" for _ in _HEADS) + "|"]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in r) + " |" for r in show]
        return "\n".join(lines)
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Leaderboard (same tier = not significantly different)")
    for h in _HEADS:
        table.add_column(
            h, justify="right" if h in ("tier", "acc %", "95% CI %", "problems", "samples/problem") else "left"
        )
    for r in show:
        table.add_row(*(Text(c) for c in r))  # labels and prompts are text, never markup
    return table
