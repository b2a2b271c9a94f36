"""Other tools: ``import lm-eval``, ``import step-dpo``, ``import qwen-math``, ``lm-eval-tasks``, and ``pairs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from trainer.pipeline.cli import pairs_app

from .common import RESULTS, app, fail, say

app.add_typer(pairs_app, name="pairs")
import_app = typer.Typer(help="Import other tools' results (re-graded by our grader, their verdict kept).")
app.add_typer(import_app, name="import")


@import_app.command("lm-eval")
def import_lm_eval_cmd(
    path: Path = typer.Argument(..., help="lm-eval --output_path folder (written with --log_samples)."),
    results: Path = RESULTS,
) -> None:
    """Import lm-evaluation-harness results and samples as runs (source=lm-eval)."""
    from ..importers import ImportFormatError, import_lm_eval

    try:
        runs = import_lm_eval(path, results)
    except ImportFormatError as exc:
        fail(str(exc))
    _print_imported(runs)


@import_app.command("step-dpo")
def import_step_dpo_cmd(
    path: Path = typer.Argument(..., help="JSON written by the Step-DPO repo's eval_math.py."),
    task: str = typer.Option("math", help="Which task the file scores: math, gsm8k, odyssey, ..."),
    model: str = typer.Option(None, help="Model name for the leaderboard (default: the file name)."),
    results: Path = RESULTS,
) -> None:
    """Import a Step-DPO eval_math.py output file as a run (source=step-dpo)."""
    from ..importers import ImportFormatError, import_step_dpo

    try:
        run = import_step_dpo(path, results, task, model)
    except ImportFormatError as exc:
        fail(str(exc))
    _print_imported([run])


@import_app.command("qwen-math")
def import_qwen_math_cmd(
    path: Path = typer.Argument(..., help="jsonl written by Qwen2.5-Math's evaluation (math_eval.py)."),
    task: str = typer.Option(..., "--task", help="The set it scores: aime24, math500, olympiadbench, ..."),
    model: str = typer.Option(None, "--model", help="Model name for the leaderboard (default: the output folder)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Our task's data, to grade against our golds."),
    results: Path = RESULTS,
) -> None:
    """Import a Qwen2.5-Math evaluation output file as a run (source=qwen2.5-math), re-graded by ours."""
    from ..importers import ImportFormatError, import_qwen_math

    try:
        run = import_qwen_math(path, results, task, model, data_dir)
    except ImportFormatError as exc:
        fail(str(exc))
    _print_imported([run])


def _print_imported(runs: list[Any]) -> None:
    from ..reports import pct

    for run in runs:
        m = run.manifest()
        theirs = m.extra.get("metrics_source") or {}
        their_acc = next(
            (
                v
                for k, v in theirs.items()
                if k.split(",")[0] in ("acc", "exact_match", "accuracy") and isinstance(v, float)
            ),
            None,
        )
        say(
            f"{m.task.name}: ours {pct(m.metrics['accuracy'])}% vs theirs {pct(their_acc)}% on "
            f"{m.metrics['n_samples']} samples, {m.extra.get('disagreements')} disagreements -> {run.path}"
        )


@app.command("lm-eval-tasks")
def lm_eval_tasks() -> None:
    """Print the directory of our lm-eval task YAMLs, for `lm_eval --include_path $(stepdpo-bench lm-eval-tasks)`."""
    print(Path(__file__).resolve().parents[1] / "lm_eval_tasks")
