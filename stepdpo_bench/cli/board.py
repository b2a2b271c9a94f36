"""``ingest``, ``leaderboard``, ``compare`` and ``app``: the index and what reads it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from .common import RESULTS, app, console, fail, note, say

DB = typer.Option(None, "--db", help="DuckDB file (default RESULTS/leaderboard.duckdb).")


@app.command()
def ingest(
    results: Path = typer.Argument(Path("results"), help="Results folder holding run directories."),
    db: Path = DB,
) -> None:
    """Index finished runs (and training logs) into the leaderboard database; safe to repeat or run concurrently."""
    from ..store import StoreError, default_db
    from ..store import ingest as do_ingest

    try:
        rep = do_ingest(results, default_db(results, db), log=note)
    except StoreError as exc:
        fail(str(exc))
    say(
        f"ingested into {default_db(results, db)}: {len(rep.added)} added, {len(rep.replaced)} replaced, "
        f"{len(rep.unchanged)} unchanged, {len(rep.skipped)} skipped"
    )


@app.command("leaderboard")
def leaderboard_cmd(
    results: Path = RESULTS,
    db: Path = DB,
    task: str = typer.Option(None, help="Only this task."),
    tag: str = typer.Option(None, help="Only runs with this tag (a method such as step-dpo, a --tag, or a source)."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | markdown."),
) -> None:
    """Print the leaderboard: accuracy with 95% CI per model and task; tied models share a tier."""
    from ..leaderboard import leaderboard, render
    from ..store import StoreError, connect, default_db

    if fmt not in ("table", "csv", "json", "markdown"):
        fail(f"unknown --format {fmt!r}; use table, csv, json or markdown")
    try:
        con = connect(default_db(results, db), read_only=True)
        try:
            rows = leaderboard(con, task, tag)
        finally:
            con.close()
    except StoreError as exc:
        fail(str(exc))
    out = render(rows, fmt)
    if isinstance(out, str):
        print(out, end="" if out.endswith("\n") else "\n")
    else:
        console.print(out)


@app.command()
def compare(
    baseline: str = typer.Argument(..., help="Run id or directory (A)."),
    candidate: str = typer.Argument(..., help="Run id or directory (B)."),
    results: Path = RESULTS,
) -> None:
    """Paired comparison of two runs on the problems both answered: B - A with its CI, the test, per subject and
    level, and how many problems B fixed and broke (the app's Compare page, in the terminal)."""
    from ..compare import compare_runs, comparison_table
    from ..runs import RunError, resolve_run

    try:
        res = compare_runs(resolve_run(baseline, results), resolve_run(candidate, results))
    except (RunError, ValueError) as exc:
        fail(str(exc))
    for table in comparison_table(res):
        console.print(table)


@app.command("app")
def app_cmd(
    results: Path = RESULTS,
    db: Path = DB,
    port: int = typer.Option(8501, help="Port on 127.0.0.1."),
    ingest_first: bool = typer.Option(True, "--ingest/--no-ingest", help="Index RESULTS before starting."),
) -> None:
    """Start the leaderboard app (Streamlit) on loopback."""
    from ..store import StoreError, default_db
    from ..store import ingest as do_ingest

    path = default_db(results, db)
    if not 0 < port < 65536:
        fail(f"--port must be in 1..65535, not {port}")
    try:
        if ingest_first and Path(results).is_dir():
            do_ingest(results, path, log=note)
    except StoreError as exc:
        fail(str(exc))
    if not path.exists():
        fail(f"{path}: no leaderboard yet; run `stepdpo-bench eval` then `stepdpo-bench ingest`")
    main_py = Path(__file__).resolve().parents[2] / "app" / "main.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(main_py),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--db",
        str(path.resolve()),
    ]
    note(f"leaderboard app on http://127.0.0.1:{port}  (index: {path})")
    sys.stderr.flush()
    os.execv(sys.executable, cmd)  # become the server: signals (Ctrl-C, a supervisor's SIGTERM) reach it directly
