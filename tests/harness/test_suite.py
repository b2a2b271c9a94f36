"""The suite's paper layout: one row per model and setting, a column per set, the macro average with an interval
computed here independently; the whole set wins over a subset; formats agree."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from stepdpo_bench.suite import render_suite, suite_rows
from stepdpo_bench.tasks import REASONING_SETS


def _row(task, acc, lo, hi, label="m", n=1, subset=False, n_problems=30, prompt="qwen25-math-cot"):
    return {
        "task": task,
        "model": f"/ckpt/{label}",
        "label": label,
        "prompt": prompt,
        "n": n,
        "temperature": 0.6 if n > 1 else 0.0,
        "accuracy": acc,
        "ci_lo": lo,
        "ci_hi": hi,
        "stderr": 0.0,
        "n_problems": n_problems,
        "subset": subset,
        "run_id": f"{label}-{task}-{n_problems}",
        "at_k": json.dumps({"pass@2": {"value": 0.7}}),
    }


def test_macro_average_and_its_interval():
    board = [_row(t, 0.1 * (i + 1), 0.1 * (i + 1) - 0.05, 0.1 * (i + 1) + 0.07) for i, t in enumerate(REASONING_SETS)]
    board += [_row("gsm8k", 0.9, 0.85, 0.95)]  # not in the suite: ignored
    sets, rows = suite_rows(board, "reasoning")
    assert sets == REASONING_SETS and len(rows) == 1
    mean, ci = rows[0].macro(sets)
    assert mean == pytest.approx(sum(0.1 * (i + 1) for i in range(7)) / 7)
    se = math.sqrt(sum(((0.12) / (2 * 1.959963984540054)) ** 2 for _ in range(7))) / 7
    assert ci == pytest.approx((mean - 1.959963984540054 * se, mean + 1.959963984540054 * se))


def test_rows_per_setting_missing_sets_and_subsets():
    board = [_row("aime24", 0.3, 0.2, 0.4, n=16), _row("aime24", 0.2, 0.1, 0.3)]  # avg@16 and greedy: two rows
    board += [_row("amc23", 0.5, 0.3, 0.7, subset=True, n_problems=4), _row("amc23", 0.4, 0.3, 0.5)]
    sets, rows = suite_rows(board, "reasoning")
    assert len(rows) == 2
    greedy = next(r for r in rows if r.n == 1)
    assert greedy.cells["amc23"].accuracy == 0.4  # the whole set, not the 4-problem subset
    text = render_suite(sets, rows, "markdown")
    assert "2/7 sets" in text and "1/7 sets" in text and "avg@16, T 0.6" in text and "greedy" in text
    assert "30.0 [20.0–40.0]" in text


def test_formats_agree_and_csv_cannot_run():
    board = [_row(t, 0.5, 0.4, 0.6, label="=cmd()") for t in REASONING_SETS]
    sets, rows = suite_rows(board, "reasoning")
    data = json.loads(render_suite(sets, rows, "json"))
    assert data[0]["sets"]["aime24"]["ci95"] == [0.4, 0.6] and data[0]["macro"]["n_sets"] == 7
    assert data[0]["sets"]["aime24"]["at_k"] == {"pass@2": {"value": 0.7}}  # the run's at_k, carried through
    rec = next(csv.DictReader(io.StringIO(render_suite(sets, rows, "csv"))))
    assert rec["label"].startswith("'=") and float(rec["macro"]) == pytest.approx(0.5)
    assert float(rec["macro_ci_lo"]) == pytest.approx(data[0]["macro"]["ci95"][0])


def test_unknown_suite():
    with pytest.raises(ValueError, match="unknown suite"):
        suite_rows([], "nope")
