"""Read-only queries behind the app: every query parameterised, every connection read-only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from stepdpo_bench.compare import breakdown, paired, per_problem
from stepdpo_bench.leaderboard import leaderboard
from stepdpo_bench.prompts import question_from_prompt
from stepdpo_bench.store import connect


class Data:
    """A read-only view of the index.  Opened per request: DuckDB read-only connections are cheap."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)

    def _con(self) -> Any:
        return connect(self.db, read_only=True)

    def _df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        con = self._con()
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()

    def leaderboard(self, task: str | None = None, tag: str | None = None) -> pd.DataFrame:
        con = self._con()
        try:
            return pd.DataFrame(leaderboard(con, task, tag))
        finally:
            con.close()

    def suite(self, name: str) -> tuple[tuple[str, ...], list[Any]]:
        """The suite's paper layout (stepdpo_bench/suite.py): its sets and one row per model and setting."""
        from stepdpo_bench.suite import suite_rows

        con = self._con()
        try:
            return suite_rows(leaderboard(con), name)
        finally:
            con.close()

    def runs(self, task: str | None = None) -> pd.DataFrame:
        return self._df(
            """SELECT run_id, label, method, base_model, task, prompt, n_problems, accuracy, created_at,
                      json_extract_string(manifest, '$.regraded_from') AS regraded_from, grader_version, source
               FROM runs WHERE status = 'done' AND (? IS NULL OR task = ?) ORDER BY created_at DESC""",
            [task, task],
        )

    def tasks(self) -> list[str]:
        return list(self._df("SELECT DISTINCT task FROM runs ORDER BY task")["task"])

    def samples(self, run_id: str) -> list[dict[str, Any]]:
        con = self._con()
        try:  # plain tuples to dicts: a DataFrame's to_dict costs more than the query on 5000-sample runs
            cur = con.execute(
                """SELECT problem_id, sample_idx, correct, pred, gold, subject, level
                   FROM samples WHERE run_id = ? ORDER BY problem_id, sample_idx""",
                [run_id],
            )
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def compare(self, a: str, b: str) -> dict[str, Any]:
        sa, sb = self.samples(a), self.samples(b)
        res = paired(per_problem(sa), per_problem(sb))
        return {
            "paired": res,
            "by_subject": pd.DataFrame(breakdown(sa, sb, "subject")),
            "by_level": pd.DataFrame(breakdown(sa, sb, "level")),
        }

    def groups(self, task: str | None = None) -> list[Any]:
        """Recipe groups (runs sharing --group): seeds, mean, between-seed spread, hierarchical CI."""
        from stepdpo_bench.groups import group_board

        con = self._con()
        try:
            return group_board(con, task)
        finally:
            con.close()

    def group_of(self, run_id: str) -> str | None:
        row = self._df("SELECT run_group FROM runs WHERE run_id = ?", [run_id])
        return None if row.empty else row["run_group"].iloc[0]

    def compare_groups(self, a: str, b: str, task: str) -> Any:
        from stepdpo_bench.groups import compare_groups

        con = self._con()
        try:
            return compare_groups(con, a, b, task)
        finally:
            con.close()

    def dpo_vs_stepdpo_pairs(self) -> pd.DataFrame:
        """(base model, task) where both a DPO and a Step-DPO run exist: the one-click comparison."""
        return self._df(
            """WITH latest AS (
                   SELECT *, row_number() OVER (PARTITION BY base_model, task, method
                                             ORDER BY created_at DESC, updated_at DESC) AS r
                   FROM runs WHERE status = 'done' AND base_model IS NOT NULL AND method IN ('dpo', 'step-dpo')
                     AND run_id NOT IN (SELECT json_extract_string(manifest, '$.regraded_from') FROM runs
                                        WHERE json_extract_string(manifest, '$.regraded_from') IS NOT NULL))
               SELECT d.base_model, d.task, d.run_id AS dpo_run, s.run_id AS stepdpo_run
               FROM latest d JOIN latest s ON d.base_model = s.base_model AND d.task = s.task
               WHERE d.method = 'dpo' AND s.method = 'step-dpo' AND d.r = 1 AND s.r = 1
               ORDER BY d.base_model, d.task"""
        )

    def problem(self, run_ids: list[str], problem_id: str, sample_idx: int = 0) -> dict[str, dict[str, Any]]:
        """Per run: prompt, completion, steps, pred, gold, verdict and reason for one problem and sample."""
        out: dict[str, dict[str, Any]] = {}
        for rid in run_ids:
            rows = self._df(
                """SELECT s.*, r.label, json_extract_string(r.manifest, '$.prompt.template') AS template
                   FROM samples s JOIN runs r USING (run_id)
                   WHERE s.run_id = ? AND s.problem_id = ? AND s.sample_idx = ?""",
                [rid, problem_id, sample_idx],
            ).to_dict("records")
            if not rows:
                continue
            steps = self._df(
                "SELECT text FROM steps WHERE run_id = ? AND problem_id = ? AND sample_idx = ? ORDER BY step_idx",
                [rid, problem_id, sample_idx],
            )
            out[rid] = {
                **rows[0],
                "steps": list(steps["text"]),
                "question": question_from_prompt(rows[0].get("template") or "", rows[0]["prompt"]),
            }
        return out

    def step_locators(self, run_ids: list[str]) -> list[tuple[str, str]]:
        """(locator, display) with finished step verdicts for every one of ``run_ids``, preferred first."""
        from stepdpo_bench.step_runs import PREFERENCE

        df = self._df(
            """SELECT locator, display, count(DISTINCT run_id) AS n FROM step_runs
               WHERE list_contains(?, run_id) GROUP BY locator, display""",
            [run_ids],
        )
        rows = [(r.locator, r.display) for r in df.itertuples() if r.n == len(set(run_ids))]
        rank = {n: i for i, n in enumerate(PREFERENCE)}
        return sorted(rows, key=lambda x: (rank.get(x[0], 99), x[1]))

    def step_solutions(self, run_id: str, display: str) -> list[Any]:
        """One run's step verdicts by one locator, joined with each sample's grade (step_metrics' records)."""
        from stepdpo_bench.step_metrics import SolutionSteps

        con = self._con()
        try:
            rows = con.execute(
                """SELECT v.problem_id, v.sample_idx, s.correct, v.verdicts, v.first_wrong, v.outcome
                   FROM step_verdicts v JOIN step_runs r USING (run_id, locator_id)
                   JOIN samples s ON s.run_id = v.run_id AND s.problem_id = v.problem_id
                                 AND s.sample_idx = v.sample_idx
                   WHERE v.run_id = ? AND r.display = ?""",
                [run_id, display],
            ).fetchall()
        finally:
            con.close()
        return [SolutionSteps(p, int(i), c, list(v), f, o) for p, i, c, v, f, o in rows]

    def compare_steps(self, a: str, b: str, display: str) -> dict[str, Any]:
        """Both runs' step metrics by one locator and their paired differences (step_metrics.compare_steps)."""
        from stepdpo_bench.step_metrics import compare_steps, step_metrics

        sa, sb = self.step_solutions(a, display), self.step_solutions(b, display)
        return {"a": step_metrics(sa), "b": step_metrics(sb), "diff": compare_steps(sa, sb)}

    def step_verdict(self, run_id: str, display: str, problem_id: str, sample_idx: int = 0) -> dict[str, Any] | None:
        df = self._df(
            """SELECT v.verdicts, v.first_wrong, v.outcome, v.evidence
               FROM step_verdicts v JOIN step_runs r USING (run_id, locator_id)
               WHERE v.run_id = ? AND r.display = ? AND v.problem_id = ? AND v.sample_idx = ?""",
            [run_id, display, problem_id, sample_idx],
        )
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["verdicts"] = list(row["verdicts"])
        fw = row["first_wrong"]
        row["first_wrong"] = None if fw is None or fw != fw else int(fw)
        return row

    def audit(self) -> pd.DataFrame:
        """Samples where two graders disagree: an imported tool's verdict vs ours, or ours across versions."""
        return self._df(
            """SELECT r.label, r.task, s.problem_id, s.sample_idx, s.pred, s.gold, s.correct AS ours,
                      s.other_correct AS other, 'imported tool (' || r.source || ')' AS other_grader, s.run_id
               FROM samples s JOIN runs r USING (run_id)
               WHERE s.other_correct IS NOT NULL AND s.other_correct <> s.correct
               UNION ALL
               SELECT n.label, n.task, s.problem_id, s.sample_idx, s.pred, s.gold, s.correct AS ours,
                      o.correct AS other, 'grader ' || old.grader_version AS other_grader, s.run_id
               FROM runs n
               JOIN runs old ON old.run_id = json_extract_string(n.manifest, '$.regraded_from')
               JOIN samples s ON s.run_id = n.run_id
               JOIN samples o ON o.run_id = old.run_id AND o.problem_id = s.problem_id
                             AND o.sample_idx = s.sample_idx
               WHERE o.correct <> s.correct
               ORDER BY 1, 3"""
        )

    def training(self) -> pd.DataFrame:
        return self._df("SELECT * FROM training_log ORDER BY run_name, step")


def first_divergence(a: list[str], b: list[str]) -> int | None:
    """Index of the first step where two solutions differ (whitespace-insensitive); None if identical."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if " ".join(x.split()) != " ".join(y.split()):
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~^=:@&$/%\"'])")
_LINKISH = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*:(?=//)|\bwww(?=\.)|@(?=\w)")  # "http:", "www", "a@b"
_UNTRUSTED_TEX = re.compile(r"\\(href|url|includegraphics|htmlClass|htmlId|htmlStyle|htmlData)(?![A-Za-z])")


def _literal(text: str) -> str:
    """Prose as Markdown that shows exactly these characters: every character Markdown (or GFM autolinking) could
    read as syntax becomes a numeric character reference, which renders as itself and forms no construct; URLs
    get an invisible break (a zero-width space after ``http:``, ``www``, ``@``) so the renderer cannot link them."""
    text = _LINKISH.sub(lambda m: m.group(0) + "\u200b", text)  # the renderer linkifies URLs in text: break them
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", text)


def safe_markdown(text: str) -> str:
    """Model text for ``st.markdown`` that renders as the text it is, LaTeX included, and nothing else: every
    Markdown and HTML control character outside math is a character reference (no image, link, autolink, code
    span or raw HTML can form),
    and inside math the commands that would make a link or load a resource (``\\href``, ``\\url``,
    ``\\includegraphics``, ``\\htmlClass``...) are shown as text instead."""
    out, last = [], 0
    for m in _MATH.finditer(text):
        out.append(_literal(text[last : m.start()]))
        out.append(_UNTRUSTED_TEX.sub(r"\\text{\\textbackslash \1}", m.group(0)))
        last = m.end()
    out.append(_literal(text[last:]))
    return "".join(out).replace("\n", "  \n")  # keep line breaks
