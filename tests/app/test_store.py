"""The DuckDB index: ingest is idempotent, replaces re-graded runs, skips broken directories, survives
concurrent writers; the leaderboard command prints honest tiers in every format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.store import connect, ingest

from .conftest import N

pytest.importorskip("duckdb")
runner = CliRunner()


def _counts(db):
    con = connect(db, read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "samples", "steps", "training_log")
        }
    finally:
        con.close()


def test_ingest_is_idempotent_and_complete(app_results, tmp_path):
    results = tmp_path / "r"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    rep = ingest(results)
    assert len(rep.added) == 3 and not rep.skipped  # dpo, step-dpo (graded 0.9.0) and its regrade
    counts = _counts(results / "leaderboard.duckdb")
    assert counts["runs"] == 3 and counts["samples"] == 3 * N and counts["training_log"] == 80
    assert counts["steps"] >= 3 * N
    rep = ingest(results)
    assert len(rep.unchanged) == 3 and not rep.added and not rep.replaced
    assert _counts(results / "leaderboard.duckdb") == counts


def test_regraded_run_replaces_its_rows_and_broken_dirs_are_skipped(app_results, tmp_path):
    results = tmp_path / "r"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    ingest(results)
    run_dir = next(
        d for d in results.glob("*/run.json") if json.loads(d.read_text())["model"]["method"] == "dpo"
    ).parent
    res = runner.invoke(app, ["regrade", str(run_dir), "--out", str(results)])
    assert res.exit_code == 0
    (results / "half-written").mkdir()
    (results / "half-written" / "run.json").write_text('{"run_id": "half-written", "status": "running"')
    running = results / "still-running"
    running.mkdir()
    live = {**json.loads((run_dir / "run.json").read_text()), "run_id": "still-running", "status": "running"}
    (running / "run.json").write_text(json.dumps(live))  # a real manifest of a run still in progress
    rep = ingest(results)
    assert rep.replaced == [run_dir.name]
    skipped = dict(rep.skipped)
    assert "corrupt manifest" in skipped[str(results / "half-written")]
    assert "not done" in skipped[str(running)]
    assert _counts(results / "leaderboard.duckdb")["runs"] == 3
    res = runner.invoke(app, ["ingest", str(results)])
    assert res.exit_code == 0 and "half-written" in res.stderr and "3 unchanged, 2 skipped" in res.stdout


def test_concurrent_ingests_lose_nothing(app_results, tmp_path):
    results = tmp_path / "r"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    cmd = [sys.executable, "-m", "stepdpo_bench.cli", "ingest", str(results)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum("3 added" in o for o, _ in outs) == 1  # exactly one did the work, the others found it done
    assert _counts(results / "leaderboard.duckdb")["samples"] == 3 * N


def test_leaderboard_formats_and_tiers(app_results):
    base = ["leaderboard", "--results", str(app_results)]
    res = runner.invoke(app, [*base, "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["label"] for r in rows] == ["tiny-step-dpo", "tiny-dpo"]  # latest grader's run only
    assert [round(r["accuracy"], 4) for r in rows] == [0.5, round(10 / 30, 4)]
    # 10 fixed vs 5 broken: score test p = 0.20, so the two are statistically tied
    assert [r["tier"] for r in rows] == [1, 1]
    csv_out = runner.invoke(app, [*base, "--format", "csv"]).stdout.splitlines()
    assert csv_out[0].startswith("task,tier,label") and len(csv_out) == 3
    md = runner.invoke(app, [*base, "--format", "markdown"]).stdout
    assert md.startswith("| task | tier | model |") and "tiny-dpo" in md
    only = runner.invoke(app, [*base, "--task", "arith", "--tag", "step-dpo", "--format", "csv"]).stdout
    assert "tiny-step-dpo" in only and ",tiny-dpo," not in only
    table = runner.invoke(app, [*base, "--task", "arith"])
    assert table.exit_code == 0 and "Leaderboard" in table.stdout and "50.0" in table.stdout
    missing = runner.invoke(app, ["leaderboard", "--db", "/nonexistent/x.duckdb"])
    assert missing.exit_code == 2 and "stepdpo-bench ingest" in missing.stderr


def test_subset_runs_are_their_own_rows_and_marked_everywhere(tiny_ckpt, shared_data, tmp_path):
    """Three odyssey runs of one model with the same problem count but different problem sets: all three are on
    the board, each marked with its filters in the table, the CSV and the JSON; the app reads the same rows."""
    out = tmp_path / "r"
    base = ["eval", "--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "odyssey", "--max-tokens", "4"]
    base += ["--data-dir", str(shared_data), "--results", str(out), "--limit", "4"]
    for extra in ([], ["--subjects", "Geometry"], ["--levels", "college math"]):
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["ingest", str(out)]).exit_code == 0
    res = runner.invoke(app, ["leaderboard", "--results", str(out), "--format", "json"])
    rows = json.loads(res.stdout)
    assert len(rows) == 3 and all(r["subset"] and r["n_problems"] == 4 for r in rows)
    assert sorted(json.dumps(r["filters"], sort_keys=True) for r in rows) == sorted(
        json.dumps(f, sort_keys=True)
        for f in ({"limit": 4}, {"limit": 4, "subjects": ["Geometry"]}, {"limit": 4, "levels": ["college math"]})
    )
    table = runner.invoke(app, ["leaderboard", "--results", str(out)]).stdout
    assert "subset: limit=4, subjects=Geometry" in table and "subset: limit=4, levels=college math" in table
    csv_text = runner.invoke(app, ["leaderboard", "--results", str(out), "--format", "csv"]).stdout
    assert csv_text.count('"{""limit"": 4') == 3
