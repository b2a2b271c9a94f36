"""``check`` (the CI gate) and ``watch`` (continuous evaluation of a training job's checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import RESULTS, app, check_method, console, fail, note, say, split, with_sampler_options


def _reports_writable(*paths: Path | None) -> None:
    """Report files are written, never lost after a verdict: their folders are created (or refused) up front.
    Nothing else is written before the verdict, so a refused command leaves no empty report behind."""
    import os

    for p in paths:
        if p is None:
            continue
        if p.is_dir():
            fail(f"{p}: is a folder; give a file path for the report (e.g. {p / 'report.md'})")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"{p.parent}: cannot create the report's folder ({exc.strerror or exc})")
        if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
            fail(f"{p}: cannot write the report (permission denied)")


@app.command()
@with_sampler_options
def check(
    baseline: list[str] = typer.Option(..., "--baseline", help="Run id, run dir, or latest:tag=T[,label=L] (repeat)."),
    candidate: list[str] = typer.Option(None, "--candidate", help="Run id, run dir or latest: query (repeat)."),
    task: str = typer.Option(None, "--task", help="Comma list of tasks (default: the runs' task)."),
    results: Path = RESULTS,
    max_drop: float = typer.Option(1.0, "--max-drop", help="Tolerated drop in accuracy points."),
    alpha: float = typer.Option(0.05, help="Significance level (split over tasks, Bonferroni)."),
    min_problems: int = typer.Option(100, "--min-problems", help="Refuse to judge on fewer common problems."),
    max_subject_drop: float = typer.Option(None, "--max-subject-drop", help="Also fail on a subject drop (points)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare despite prompt/data/grader drift."),
    inconclusive_ok: bool = typer.Option(False, "--inconclusive-ok", help="Exit 0 instead of 3 when inconclusive."),
    seed: int = typer.Option(0, help="Seed of the stratified subset draw."),
    markdown_out: Path = typer.Option(None, "--markdown", help="Write the PR-comment report here."),
    json_out: Path = typer.Option(None, "--json", help="Write the machine-readable report here."),
    junit_out: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    app_url: str = typer.Option(None, "--app-url", help="Link broken problems into the app at this URL."),
    candidate_model: str = typer.Option(None, "--candidate-model", help="Evaluate this checkpoint as the candidate."),
    stratified_subset: int = typer.Option(
        None, "--stratified-subset", help="First look at N stratified problems; the full set only if undecided."
    ),
    spending: str = typer.Option(
        "pocock", "--spending", help="Alpha spending of the two looks: pocock (early) | obrien-fleming (late)."
    ),
    data_dir: Path = typer.Option(None, "--data-dir", help="For --candidate-model: local task data."),
    sampler: Any = None,
) -> None:
    """Gate a candidate against a baseline: exit 0 pass, 1 fail, 3 inconclusive, 2 unusable input."""
    from .. import gate
    from ..checkpoints import CheckpointError
    from ..runs import RunError
    from ..samplers import SamplerError
    from ..tasks import TaskError

    if not candidate and not candidate_model:
        fail("give --candidate RUN or --candidate-model CKPT")
    if candidate and candidate_model:
        fail("give --candidate or --candidate-model, not both")
    if max_drop < 0:
        fail(f"--max-drop is a tolerated drop in points: 0 or more, not {max_drop:g}")
    if not 0 < alpha < 1:
        fail(f"--alpha must be in (0, 1), not {alpha:g}")
    if min_problems < 1:
        fail(f"--min-problems must be at least 1, not {min_problems}")
    if max_subject_drop is not None and max_subject_drop < 0:
        fail(f"--max-subject-drop must be 0 or more points, not {max_subject_drop:g}")
    if spending not in ("pocock", "obrien-fleming"):
        fail(f"--spending {spending!r}: choose pocock or obrien-fleming")
    if stratified_subset is not None and stratified_subset < 1:
        fail(f"--stratified-subset must be at least 1, not {stratified_subset}")
    _reports_writable(markdown_out, json_out, junit_out)
    settings = gate.CheckSettings(
        max_drop / 100,
        alpha,
        min_problems,
        allow_mismatch,
        seed,
        None if max_subject_drop is None else max_subject_drop / 100,
        spending,
    )
    tasks: list[str | None] = list(split(task) or [None])
    try:
        if candidate_model:
            verdicts = gate.check_model(
                baseline, candidate_model, tasks, results, settings, sampler, data_dir, stratified_subset, log=note
            )
        else:
            verdicts = gate.check_runs(baseline, candidate, tasks, results, settings)
    except (gate.GateError, RunError, TaskError, SamplerError, CheckpointError) as exc:
        fail(str(exc))
    except Exception as exc:  # unusable input must never read as "the checkpoint regressed" (exit 1)
        fail(f"unusable input: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    head = gate.overall(verdicts)
    for v in verdicts:
        color = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[v.verdict]
        console.print(f"[{color}]{v.verdict.upper()}[/]", end=" ", highlight=False)
        say(
            f"{v.task}: {100 * v.acc_baseline:.1f}% -> {100 * v.acc_candidate:.1f}% ({100 * v.diff:+.1f} pts, "
            f"{100 * (1 - v.alpha):.4g}% CI {100 * v.ci[0]:+.1f}..{100 * v.ci[1]:+.1f}, p={v.p_value:.2g}, "
            f"n={v.n}, MDE {100 * v.mde:.1f} pts) — {v.reason}"
        )
        if v.problem_sets:
            say(f"  problem sets differ: compared on {v.problem_sets} (candidate)")
        if v.verdict == gate.INCONCLUSIVE and v.n_needed:
            say(f"  about {v.n_needed} problems would decide (now {v.n})")
    if markdown_out:
        markdown_out.write_text(gate.markdown(verdicts, settings.max_drop, app_url))
    if json_out:
        json_out.write_text(
            json.dumps(
                {
                    "verdict": head,
                    "max_drop_points": max_drop,
                    "alpha": alpha,
                    "tasks": [v.to_dict() for v in verdicts],
                },
                indent=1,
            )
        )
    if junit_out:
        junit_out.write_text(gate.junit(verdicts))
    code = gate.EXIT[head]
    raise typer.Exit(0 if code == 3 and inconclusive_ok else code)


@app.command()
@with_sampler_options
def watch(
    ckpt_dir: Path = typer.Argument(..., help="Directory where training saves checkpoints (checkpoint-N/)."),
    tasks: str = typer.Option("math500,gsm8k", "--tasks", help="Comma list of tasks to evaluate each checkpoint on."),
    baseline: str = typer.Option(None, "--baseline", help="Gate each checkpoint against this run (id, dir, latest:)."),
    results: Path = RESULTS,
    interval: float = typer.Option(60.0, help="Seconds between scans."),
    settle: float = typer.Option(30.0, help="A checkpoint counts once unchanged for this many seconds."),
    once: bool = typer.Option(False, "--once", help="One scan, then exit."),
    data_dir: Path = typer.Option(None, "--data-dir"),
    limit: int = typer.Option(None, help="Only the first N problems of each task."),
    prompt: str = typer.Option(None, help="Prompt template name."),
    max_tokens: int = typer.Option(2048, "--max-tokens"),
    method: str = typer.Option("other", help="Leaderboard method for these checkpoints."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="Gate margin in points."),
    min_problems: int = typer.Option(100, "--min-problems"),
    sampler: Any = None,
) -> None:
    """Evaluate checkpoints as they appear, ingest them, gate them; one line per checkpoint; restart-safe."""
    from ..samplers import SamplerError
    from ..tasks import expand_tasks
    from ..watch import WatchState, evaluate_checkpoint
    from ..watch import watch as do_watch

    check_method(method)
    task_list = expand_tasks(split(tasks) or fail("--tasks is empty"))
    if interval <= 0 or settle < 0 or max_tokens < 1 or (limit is not None and limit < 1) or max_drop < 0:
        fail("--interval must be positive; --settle, --max-drop 0 or more; --max-tokens, --limit at least 1")
    if not ckpt_dir.is_dir():
        fail(f"{ckpt_dir}: no such directory")
    try:
        sampler.check()
    except SamplerError as exc:
        fail(str(exc))

    def process(ckpt: Path) -> dict[str, Any]:
        return evaluate_checkpoint(
            ckpt,
            task_list,
            results,
            sampler,
            data_dir=data_dir,
            limit=limit,
            prompt=prompt,
            max_tokens=max_tokens,
            method=method,
            baseline=baseline,
            max_drop=max_drop / 100,
            min_problems=min_problems,
        )

    def emit(line: dict[str, Any]) -> None:
        from ..reports import pct

        parts = [
            f"{t} {pct(e['accuracy'])}%" + (f" [{e['gate']}]" if "gate" in e else "") for t, e in line["tasks"].items()
        ]
        say(f"{line['checkpoint']}: " + ", ".join(parts))

    try:
        n = do_watch(
            ckpt_dir,
            WatchState(results / "watch_state.json"),
            process,
            interval=interval,
            settle=settle,
            once=once,
            emit=emit,
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if once and not n:
        say(
            f"{ckpt_dir}: no new complete checkpoint (checkpoint-N/ with config.json and weights, unchanged for "
            f"{settle:g} s); nothing to do"
        )
