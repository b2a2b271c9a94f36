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
    groups: bool = typer.Option(False, "--groups", help="Also the recipe groups (--group): seeds, mean, spread."),
    suite: str = typer.Option(
        None, "--suite", help="The paper layout of a suite (reasoning): a row per model, a column per set, macro avg."
    ),
) -> None:
    """Print the leaderboard: accuracy with 95% CI per model and task; tied models share a tier.  With --suite,
    one row per model and a column per set of the suite, each with its interval, and the macro average."""
    from ..groups import group_board, group_table
    from ..leaderboard import leaderboard, render
    from ..store import StoreError, connect, default_db

    if fmt not in ("table", "csv", "json", "markdown"):
        fail(f"unknown --format {fmt!r}; use table, csv, json or markdown")
    if groups and fmt != "table":
        fail("--groups prints a table; use it without --format")
    if suite is not None:
        from ..tasks import SUITES

        if suite not in SUITES:
            fail(f"unknown --suite {suite!r}; choose from {', '.join(SUITES)}")
        if task is not None or groups:
            fail("--suite shows every set of the suite; drop --task and --groups")
    try:
        con = connect(default_db(results, db), read_only=True)
        try:
            rows = leaderboard(con, task, tag)
            group_rows = group_board(con, task) if groups else []
        finally:
            con.close()
    except StoreError as exc:
        fail(str(exc))
    if suite is not None:
        from ..suite import render_suite, suite_rows

        sets, srows = suite_rows(rows, suite)
        if not srows:
            fail(f"no finished runs of the {suite} suite's sets ({', '.join(sets)}) in the index yet")
        out = render_suite(sets, srows, fmt)
    else:
        out = render(rows, fmt)
    if isinstance(out, str):
        print(out, end="" if out.endswith("\n") else "\n")
    else:
        console.print(out)
    if groups:
        console.print(group_table(group_rows) if group_rows else "no run has a --group yet")


@app.command()
def compare(
    baseline: str = typer.Argument(..., help="Run id or directory (A); a group name with --groups."),
    candidate: str = typer.Argument(..., help="Run id or directory (B); a group name with --groups."),
    results: Path = RESULTS,
    groups: bool = typer.Option(False, "--groups", help="A and B are recipe groups (--group): compare across seeds."),
    task: str = typer.Option(None, "--task", help="With --groups: the task, when the groups share several."),
    db: Path = DB,
) -> None:
    """Paired comparison of two runs on the problems both answered: B - A with its CI, the test, per subject and
    level, and how many problems B fixed and broke (the app's Compare page, in the terminal).  With --groups, two
    recipes across their seeds (hierarchical bootstrap over seeds and problems)."""
    from ..compare import compare_runs, comparison_table
    from ..runs import RunError, resolve_run

    if groups:
        _compare_groups(baseline, candidate, task, results, db)
        return
    try:
        res = compare_runs(resolve_run(baseline, results), resolve_run(candidate, results))
    except (RunError, ValueError) as exc:
        fail(str(exc))
    for table in comparison_table(res):
        console.print(table)
    for w in res.warnings:
        note(f"warning: {w}")


def _compare_groups(a: str, b: str, task: str | None, results: Path, db: Path | None) -> None:
    from ..groups import compare_groups, group_table
    from ..store import StoreError, connect, default_db

    try:
        con = connect(default_db(results, db), read_only=True)
        try:
            res = compare_groups(con, a, b, task)
        finally:
            con.close()
    except (StoreError, ValueError) as exc:
        fail(str(exc))
    console.print(group_table([res.a, res.b]))
    say(
        f"{b} - {a} on {res.task} ({res.n_problems} problems every run answered): {100 * res.diff:+.1f} pts, "
        f"95% CI {100 * res.ci95[0]:+.1f}..{100 * res.ci95[1]:+.1f} (seeds and problems resampled), "
        f"p = {res.p_value:.2g}"
    )


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
