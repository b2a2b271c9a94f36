"""The ``stepdpo-bench`` command line.  Each sub-command is a thin shell over a library function."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from . import __version__

app = typer.Typer(
    help="Evaluate math-reasoning LLMs with robust answer grading; build and compare Step-DPO checkpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"stepdpo-bench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """stepdpo-bench: evaluation, Step-DPO data and leaderboard for math reasoning."""


@app.command()
def grade(
    pred: str = typer.Argument(..., help="The predicted answer (or a whole completion with --extract)."),
    gold: str = typer.Argument(..., help="The gold answer."),
    task: str = typer.Option("math", help="Answer convention: math, gsm8k, odyssey or arith."),
    extract: bool = typer.Option(False, "--extract", help="Treat PRED as a completion; extract its answer first."),
    timeout: float = typer.Option(None, help="Seconds allowed for the symbolic comparison (default 5)."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Say whether PRED equals GOLD, and why.  Exit code 0 when equivalent, 1 when not, 2 on bad input."""
    from .grading import GRADER_VERSION, TASKS, extract_answer, is_equivalent

    if task not in TASKS:
        err.print(f"[red]error:[/] unknown task {task!r}; choose one of {', '.join(TASKS)}")
        raise typer.Exit(2)
    answer = extract_answer(pred, task) if extract else pred
    verdict = is_equivalent(answer, gold, task, timeout=timeout)
    if as_json:
        print(
            json.dumps(
                {
                    "pred": answer,
                    "gold": gold,
                    "task": task,
                    "equal": verdict.equal,
                    "reason": verdict.reason,
                    "grader_version": GRADER_VERSION,
                }
            )
        )
    else:
        mark = "[green]EQUIVALENT[/]" if verdict else "[red]NOT EQUIVALENT[/]"
        if extract:
            console.print(f"extracted: {answer!r}", markup=False)
        console.print(f"{mark}  {verdict.reason}", highlight=False)
    raise typer.Exit(0 if verdict else 1)


if __name__ == "__main__":
    sys.exit(app())
