"""``stepdpo-bench grade``: one verdict, with its reason."""

from __future__ import annotations

import json

import typer

from .common import app, console, fail, say


@app.command()
def grade(
    pred: str = typer.Argument(..., help="The predicted answer (or a whole completion with --extract)."),
    gold: str = typer.Argument(..., help="The gold answer."),
    convention: str = typer.Option(
        "math", "--convention", "--task", help="Answer convention: math, gsm8k, odyssey or arith."
    ),
    extract: bool = typer.Option(False, "--extract", help="Treat PRED as a completion; extract its answer first."),
    timeout: float = typer.Option(None, help="Seconds allowed for the symbolic comparison (default 5)."),
    question: str = typer.Option(None, "--question", help="The problem text (a rounding it asks for is accepted)."),
    lenient: bool = typer.Option(False, "--lenient", help="Grader 1.x rule: correctly rounded decimals match."),
    fmt: str = typer.Option("text", "--format", help="text | json."),
    as_json: bool = typer.Option(False, "--json", hidden=True, help="Same as --format json (deprecated)."),
) -> None:
    """Say whether PRED equals GOLD, and why.  Exit code 0 when equivalent, 1 when not, 2 on bad input."""
    from ..grading import GRADER_VERSION, TASKS, extract_answer, is_equivalent

    if convention not in TASKS:
        fail(f"unknown answer convention {convention!r}; choose one of {', '.join(TASKS)}")
    if fmt not in ("text", "json"):
        fail(f"--format {fmt!r}: use text or json")
    if timeout is not None and timeout <= 0:
        fail(f"--timeout must be positive, not {timeout:g}")
    answer = extract_answer(pred, convention) if extract else pred
    verdict = is_equivalent(answer, gold, convention, question=question, lenient=lenient, timeout=timeout)
    if as_json or fmt == "json":
        print(
            json.dumps(
                {
                    "pred": answer,
                    "gold": gold,
                    "convention": convention,
                    "equal": verdict.equal,
                    "reason": verdict.reason,
                    "grader_version": GRADER_VERSION,
                }
            )
        )
    else:
        if extract:
            say(f"extracted: {answer!r}")
        mark = "[green]EQUIVALENT[/]" if verdict else "[red]NOT EQUIVALENT[/]"
        console.print(mark, end="  ", highlight=False)
        say(verdict.reason)
    raise typer.Exit(0 if verdict else 1)
