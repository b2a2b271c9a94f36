"""Readers never block a writer: with a read-only connection held open (as the app and ``leaderboard`` hold one),
three ingests in other processes each add a run and exit 0; the open reader keeps answering from the index it
opened, and the next reader sees every new run.  (Within one process DuckDB shares an open database between its
connections, so a reader sees the new index once that process's earlier connections are closed: the app opens one
per request.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from stepdpo_bench.store import connect, ingest

from ..helpers import clone_run


def _count(con) -> int:
    return con.execute("SELECT count(*) FROM runs").fetchone()[0]


def test_ingest_while_a_reader_holds_the_index(app_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    ingest(results)
    db = results / "leaderboard.duckdb"
    src = next(d for d in sorted(results.iterdir()) if (d / "samples.parquet").is_file())
    reader = connect(db, read_only=True)
    try:
        first = _count(reader)
        for i in range(3):
            clone_run(src, results, f"late-{i}")
            res = subprocess.run(
                [sys.executable, "-m", "stepdpo_bench.cli", "ingest", str(results)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert res.returncode == 0, res.stderr
            assert "1 added" in res.stdout, res.stdout
            assert _count(reader) == first  # the open reader still answers, from the index it opened
            board = subprocess.run(  # the next reader (another process: a CLI call, the app's next request)
                [
                    sys.executable,
                    "-m",
                    "stepdpo_bench.cli",
                    "leaderboard",
                    "--results",
                    str(results),
                    "--format",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert board.returncode == 0, board.stderr
            labels = {r["label"] for r in json.loads(board.stdout)}
            assert {f"late-{j}" for j in range(i + 1)} <= labels
    finally:
        reader.close()
