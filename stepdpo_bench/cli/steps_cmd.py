"""``stepdpo-bench steps``: step verdicts for finished runs (``eval --locate`` does it as part of an eval)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from .common import RESULTS, app, console, fail, note

LOCATOR_HELP = (
    "exact (arith: every step's truth is known), symbolic (checkable arithmetic in any step, GSM8K <<a=b>> "
    "annotations included), judge (an OpenAI-compatible chat model: --judge-model, --judge-base-url)."
)


def locator_spec(locator: str, judge_model: str | None, judge_base_url: list[str] | None, max_tokens: int) -> Any:
    """The --locator options as a checked spec; a bad combination exits 2 with one line."""
    from ..step_runs import LocatorSpec

    try:
        return LocatorSpec(
            locator,
            judge_model=judge_model,
            judge_base_urls=list(judge_base_url or []),
            judge_api_key=os.environ.get("STEPDPO_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY"),
            judge_max_tokens=max_tokens,
        ).check()
    except ValueError as exc:
        fail(str(exc))


def run_locator(runs: list[Any], spec: Any, chunk_size: int = 64) -> list[Any]:
    """Verdicts for each run with a progress bar; errors propagate (the caller turns them into one line)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..step_runs import locate_run

    out = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        for run in runs:
            tid = bar.add_task(f"steps ({spec.display}) {run.run_id[:48]}", total=None)
            res = locate_run(
                run,
                spec,
                chunk_size=chunk_size,
                progress=lambda done, total, t=tid: bar.update(t, completed=done, total=total),
            )
            n = res.reused + res.judged  # every sample of the run has its verdicts now
            bar.update(tid, completed=n, total=n)
            out.append(res)
            if res.reused and res.judged:
                note(f"{run.path}: {res.reused} samples had verdicts from an earlier call; judged {res.judged} more")
    return out


@app.command("steps")
def steps_cmd(
    runs: list[str] = typer.Argument(..., help="Run directories, run ids under --results, or a folder of runs."),
    locator: str = typer.Option("symbolic", "--locator", help=LOCATOR_HELP),
    judge_model: str = typer.Option(None, "--judge-model", help="The judge's model name on its server."),
    judge_base_url: list[str] = typer.Option(
        None, "--judge-base-url", help="The judge server's /v1 URL (repeatable); key from STEPDPO_JUDGE_API_KEY."
    ),
    judge_max_tokens: int = typer.Option(1024, "--judge-max-tokens", help="The judge's reply budget."),
    chunk_size: int = typer.Option(64, "--chunk-size", help="Samples per saved chunk (a kill loses at most one)."),
    results: Path = RESULTS,
) -> None:
    """Add step verdicts (correct / wrong / unchecked per step, the first wrong step) to finished runs, without
    regenerating; stored beside each run's samples, resumable, shown by ingest, the leaderboard and the app."""
    from ..reports import steps_table
    from ..runs import RunError
    from ..samplers import SamplerError
    from .evaluation import resolve_targets

    spec = locator_spec(locator, judge_model, judge_base_url, judge_max_tokens)
    if chunk_size < 1 or judge_max_tokens < 1:
        fail("--chunk-size and --judge-max-tokens must be at least 1")
    try:
        targets = resolve_targets(runs, results)
        done = [t for t in targets if (m := t.manifest()) is not None and m.done]
        for t in targets:
            if t not in done:
                note(f"skipped {t.path}: not a finished run")
        if not done:
            fail("no finished run to add steps to")
        out = run_locator(done, spec, chunk_size)
    except (RunError, ValueError) as exc:
        fail(str(exc))
    except SamplerError as exc:
        fail(f"judge {judge_model!r} failed ({exc}); verdicts so far are saved, rerun the same command to continue")
    except KeyboardInterrupt:
        fail("interrupted; verdicts so far are saved, run the same command to continue", 130)
    console.print(steps_table(out))
