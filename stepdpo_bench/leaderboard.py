"""Leaderboard queries over the index: latest finished run per (model, task, prompt, sampling), with tiers.

Shared by ``stepdpo-bench leaderboard`` and the app, so the terminal and the browser show the same ranking.
"""

from __future__ import annotations

from typing import Any

from .compare import tiers

LEADERBOARD_SQL = """
WITH superseded_runs AS (
    SELECT json_extract_string(manifest, '$.regraded_from') AS superseded FROM runs
    WHERE json_extract_string(manifest, '$.regraded_from') IS NOT NULL
)
SELECT run_id, label, model, method, base_model, task, prompt, backend, n, temperature, n_problems,
       accuracy, ci_lo, ci_hi, stderr, invalid_rate, truncation_rate, mean_tokens, grader_version, source,
       created_at, tags
FROM runs
WHERE status = 'done'
  AND run_id NOT IN (SELECT superseded FROM superseded_runs)  -- a re-graded run replaces its original
  AND (? IS NULL OR task = ?)
  AND (? IS NULL OR list_contains(tags, ?))
QUALIFY row_number() OVER (PARTITION BY model, fingerprint, task, prompt, backend, n, temperature, max_tokens,
                                        data_sha256, n_problems ORDER BY created_at DESC, updated_at DESC) = 1
ORDER BY task, accuracy DESC, label
"""


def leaderboard(con: Any, task: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
    """Rows best-first within each task, each with a ``tier``: runs not significantly worse (paired, on the
    problems they share) than the best run of the current tier share its tier."""
    cur = con.execute(LEADERBOARD_SQL, [task, task, tag, tag])
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    for task_rows in by_task.values():
        ids = [r["run_id"] for r in task_rows]
        scores = per_problem_scores(con, ids)
        t = tiers(ids, scores)
        for r in task_rows:
            r["tier"] = t[r["run_id"]]
    return rows


def per_problem_scores(con: Any, run_ids: list[str]) -> dict[str, dict[str, float]]:
    if not run_ids:
        return {}
    out: dict[str, dict[str, float]] = {rid: {} for rid in run_ids}
    q = """SELECT run_id, problem_id, avg(correct::INTEGER) FROM samples
           WHERE run_id IN (SELECT unnest(?)) GROUP BY run_id, problem_id"""
    for rid, pid, acc in con.execute(q, [run_ids]).fetchall():
        out[rid][pid] = float(acc)
    return out
