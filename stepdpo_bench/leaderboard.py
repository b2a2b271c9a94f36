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
       created_at, tags, json_extract_string(metrics, '$.extraction') AS extraction,
       json_extract_string(metrics, '$.at_k') AS at_k, subset, filters, lenient,
       data_sha256, problems_sha, run_group
FROM runs
WHERE status = 'done'
  AND run_id NOT IN (SELECT superseded FROM superseded_runs)  -- a re-graded run replaces its original
  AND (? IS NULL OR task = ?)
  AND (? IS NULL OR list_contains(tags, ?))
QUALIFY row_number() OVER (PARTITION BY model, fingerprint, task, prompt, backend, n, temperature, max_tokens,
                                        json_extract_string(manifest, '$.sampling.top_k'),
                                        json_extract_string(manifest, '$.sampling.min_p'),
                                        json_extract_string(manifest, '$.sampling.repetition_penalty'),
                                        data_sha256, problems_sha, lenient  -- a different problem set is another row
                           ORDER BY created_at DESC, updated_at DESC) = 1
ORDER BY task, subset, n_problems DESC, problems_sha, accuracy DESC, label
"""


def leaderboard(con: Any, task: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
    """Rows best-first within each task and problem set, each with a ``tier`` that is ranked only among runs on
    the same problem set (same data, same problem ids): a subset run is tiered with the runs on its subset.
    ``vs_*`` fields say what the tier rests on: the difference to the head the run was compared with, the
    Holm-adjusted p and the number of shared problems."""
    cur = con.execute(LEADERBOARD_SQL, [task, task, tag, tag])
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        r["filters"] = json.loads(r["filters"]) if isinstance(r.get("filters"), str) else r.get("filters") or {}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["data_sha256"] or "", r["problems_sha"] or r["run_id"]), []).append(r)
    # per-problem scores only for runs that share their problem set with another: one scan for every task
    shared_ids = [r["run_id"] for g in groups.values() if len(g) > 1 for r in g]
    matrix = score_matrix(con, shared_ids) if shared_ids else None
    position = {rid: i for i, rid in enumerate(shared_ids)}
    for group_rows in groups.values():
        group_rows.sort(key=lambda r: -(r["accuracy"] if r["accuracy"] is not None else -1))
        if len(group_rows) == 1:  # alone on its problem set: nothing to test
            r = group_rows[0]
            r.update({"tier": 1, "vs": None, "vs_diff": 0.0, "vs_p_holm": None, "vs_shared": r["n_problems"]})
            continue
        ids = [r["run_id"] for r in group_rows]
        sub = matrix[[position[i] for i in ids]]
        t = tiers(ids, sub[:, ~np.isnan(sub).all(axis=0)])  # this problem set's columns only
        for r in group_rows:
            r.update(t[r["run_id"]])
    order = {id(r): i for i, r in enumerate(r for g in groups.values() for r in g)}
    _add_step_columns(con, rows)
    return sorted(rows, key=lambda r: order[id(r)])


STEP_COLUMNS = (
    "steps_locator",
    "step_accuracy",
    "step_accuracy_lo",
    "step_accuracy_hi",
    "right_for_wrong_reasons",
    "right_for_wrong_reasons_lo",
    "right_for_wrong_reasons_hi",
    "first_error_step",
)


def _add_step_columns(con: Any, rows: list[dict[str, Any]]) -> None:
    """Step metrics for runs that have step verdicts (``stepdpo-bench steps``): the preferred locator's (exact,
    then symbolic, then judge), named in ``steps_locator``; None elsewhere."""
    from .step_runs import PREFERENCE

    for r in rows:
        r.update(dict.fromkeys(STEP_COLUMNS))
    ids = [r["run_id"] for r in rows]
    if not ids:
        return
    found: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for rid, locator, display, metrics in con.execute(
        "SELECT run_id, locator, display, metrics FROM step_runs WHERE list_contains(?, run_id) ORDER BY locator_id",
        [ids],
    ).fetchall():
        rank = PREFERENCE.index(locator) if locator in PREFERENCE else len(PREFERENCE)
        if rid not in found or rank < found[rid][0]:
            found[rid] = (rank, display, json.loads(metrics))
    for r in rows:
        if r["run_id"] not in found:
            continue
        _, display, met = found[r["run_id"]]
        r["steps_locator"] = display
        for key in ("step_accuracy", "right_for_wrong_reasons"):
            block = met.get(key) or {}
            lo, hi = block.get("ci95") or [None, None]
            r[key], r[f"{key}_lo"], r[f"{key}_hi"] = block.get("value"), lo, hi
        r["first_error_step"] = (met.get("first_error_step") or {}).get("value")


def subset_note(filters: dict[str, Any] | str | None) -> str:
    """``subset: subjects=Geometry, limit=4`` for a run on part of a task (its filters), ``""`` for the whole task."""
    filters = json.loads(filters) if isinstance(filters, str) else filters or {}
    parts = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in filters.items()
        if v not in (None, [], "")
    ]
    return "subset: " + ", ".join(parts) if parts else ""


def extraction_summary(extraction: Any, top: int = 3) -> str:
    """``boxed 92% · last-math 5% · none 3%``: how a run's answers were found (fallbacks show up here)."""
    shares = json.loads(extraction) if isinstance(extraction, str) else extraction or {}
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
    return " · ".join(f"{m} {100 * v:.0f}%" for m, v in ranked) if ranked else "-"


def score_matrix(con: Any, run_ids: list[str]) -> np.ndarray:
    """Per-problem mean correctness as a (runs x problems) array, NaN where a run did not answer a problem.
    Built in DuckDB and numpy (one query, no per-row Python) so tiers stay fast on 1M-sample indexes."""
    q = """
        WITH sel AS (
            SELECT i.r, s.pkey, s.score FROM problem_scores s
            JOIN (SELECT unnest(?) AS run_id, generate_subscripts(?, 1) - 1 AS r) i USING (run_id)),
        k AS (SELECT pkey, row_number() OVER () - 1 AS c FROM (SELECT DISTINCT pkey FROM sel))
        SELECT sel.r, k.c, sel.score FROM sel JOIN k USING (pkey)
    """  # each problem's column numbered by a hash in DuckDB, not by sorting a million strings in numpy
    res = con.execute(q, [run_ids, run_ids]).fetchnumpy()
    cols = res["c"].astype(np.int64)
    m = np.full((len(run_ids), int(cols.max()) + 1 if len(cols) else 0), np.nan)
    m[res["r"].astype(np.int64), cols] = res["score"].astype(float)
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
    "vs",
    "vs_diff",
    "vs_p_holm",
    "vs_shared",
    "created_at",
    "run_id",
    *STEP_COLUMNS,
)
_HEADS = (
    "task",
    "tier",
    "model",
    "method",
    "base",
    "acc %",
    "95% CI %",
    "vs tier head",
    "problems",
    "samples/problem",
    "prompt",
    "source",
    "date",
)


STEP_HEADS = ("steps by", "step acc % (CI)", "right, wrong reasons % (CI)", "1st error step")


def _step_cells(r: dict[str, Any]) -> tuple[str, ...]:
    from .reports import pct

    if not r.get("steps_locator"):
        return ("", "", "", "")

    def ci(key: str) -> str:
        if r.get(key) is None:
            return "-"
        return f"{pct(r[key])} ({pct(r[key + '_lo'])}–{pct(r[key + '_hi'])})"

    fe = r.get("first_error_step")
    return (r["steps_locator"], ci("step_accuracy"), ci("right_for_wrong_reasons"), "-" if fe is None else f"{fe:.2f}")


def vs_note(r: dict[str, Any]) -> str:
    """``-1.2 pts, p 0.41 (Holm), 500 shared``: what a row's tier rests on (empty for a problem set's best run,
    whose ``vs`` is None, or NaN once a data frame has held it: the app's table said "no shared problems" there)."""
    if not isinstance(r.get("vs"), str) or not r["vs"]:
        return ""
    p = r.get("vs_p_holm")
    return (
        f"{100 * r['vs_diff']:+.1f} pts, p {p:.2g} (Holm), {r['vs_shared']} shared" if p == p else "no shared problems"
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
    steps = any(r.get("steps_locator") for r in rows)  # step columns only where some run has step verdicts
    heads = _HEADS + (STEP_HEADS if steps else ())
    show = [
        (
            r["task"] + (f" ({subset_note(r['filters'])})" if r.get("subset") else ""),
            str(r["tier"]),
            r["label"],
            r["method"] or "",
            r["base_model"] or "",
            pct(r["accuracy"]),
            f"{pct(r['ci_lo'])}–{pct(r['ci_hi'])}",
            vs_note(r),
            str(r["n_problems"]),
            str(r["n"]),
            r["prompt"] or "",
            r["source"] or "",
            str(r["created_at"])[:10],
        )
        + (_step_cells(r) if steps else ())
        for r in rows
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in r) + " |" for r in show]
        return "\n".join(lines)
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="Leaderboard (same tier = not significantly worse than the tier's head; Holm over all pairs; "
        "ranked within each problem set)"
    )
    for h in heads:
        table.add_column(
            h,
            justify="right"
            if h in ("tier", "acc %", "95% CI %", "vs tier head", "problems", "samples/problem", *STEP_HEADS)
            else "left",
        )
    for r in show:
        table.add_row(*(Text(c) for c in r))  # labels and prompts are text, never markup
    return table
