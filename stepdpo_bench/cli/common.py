"""What every command shares: the typer app, the consoles, one-line errors, and the sampler options group."""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from pathlib import Path
from typing import Any, NoReturn

import typer
import typer.rich_utils
from rich.console import Console

from .. import __version__
from ..samplers.options import SamplerOptions

if not sys.stdout.isatty():  # CI logs and pipes: full-width help and tables, never "--gradient-checkp…"
    typer.rich_utils.MAX_WIDTH = 200

app = typer.Typer(
    help="Evaluate math-reasoning LLMs with robust answer grading; build and compare Step-DPO checkpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


console = _console(False)
err = _console(True)

METHODS = ("base", "sft", "dpo", "step-dpo", "other")
RESULTS = typer.Option(Path("results"), "--results", "--out", help="Results folder: where runs live.")


def fail(msg: str, code: int = 2) -> NoReturn:
    """One line on stderr, a non-zero exit: user text is printed as text, never as markup."""
    err.print(f"error: {msg}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def note(msg: str) -> None:
    err.print(msg, highlight=False, soft_wrap=True, markup=False)


def say(msg: str) -> None:
    console.print(msg, highlight=False, soft_wrap=True, markup=False)


def split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def check_method(method: str) -> str:
    if method not in METHODS:
        fail(f"--method {method!r}: choose from {', '.join(METHODS)} (free-form labels go in --tag)")
    return method


def _version(value: bool) -> None:
    if value:
        say(f"stepdpo-bench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """stepdpo-bench: evaluation, Step-DPO data and leaderboard for math reasoning."""


# ---- the sampler options group: declared once, added to eval, check and watch ---------------------------------
_SAMPLER_PARAMS: list[tuple[str, Any, Any]] = [
    (
        "backend",
        str | None,
        typer.Option(None, "--backend", help="vllm | hf | openai (default: vllm with a GPU, else hf)."),
    ),
    ("revision", str | None, typer.Option(None, "--revision", help="hf, vllm: Hub revision.")),
    ("dtype", str, typer.Option("auto", "--dtype", help="hf, vllm: auto | float32 | bfloat16 | float16.")),
    ("trust_remote_code", bool, typer.Option(False, "--trust-remote-code", help="hf, vllm: run the model's own code.")),
    ("batch_size", int, typer.Option(16, "--batch-size", help="hf: prompts per generate() call.")),
    ("tp", int, typer.Option(1, "--tp", help="vllm: tensor-parallel size.")),
    ("dp", int, typer.Option(1, "--dp", help="vllm: data-parallel replicas.")),
    ("gpu_memory_utilization", float | None, typer.Option(None, "--gpu-memory-utilization", help="vllm.")),
    ("enforce_eager", bool, typer.Option(False, "--enforce-eager", help="vllm: no CUDA graphs / compilation.")),
    ("max_model_len", int | None, typer.Option(None, "--max-model-len", help="vllm: context length cap.")),
    (
        "base_urls",
        list[str] | None,
        typer.Option(None, "--base-url", help="openai: server URL ending in /v1 (repeat: a fleet)."),
    ),
    ("concurrency", int, typer.Option(16, "--concurrency", help="openai: requests in flight.")),
    ("retries", int, typer.Option(6, "--retries", help="openai: retries per request on 429/5xx/timeouts.")),
]


def with_sampler_options(func: Any) -> Any:
    """Add the sampler options to a command; the command receives them as one ``sampler: SamplerOptions``."""
    sig = inspect.signature(func)
    hints = typing.get_type_hints(func)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values() if p.name != "sampler"
    ]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, kind, default in _SAMPLER_PARAMS
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name, _, _ in _SAMPLER_PARAMS}
        values["base_urls"] = list(values["base_urls"] or [])
        return func(*args, sampler=SamplerOptions(**values), **kwargs)

    params = own + extra
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": hints.get("return")}
    del wrapper.__wrapped__  # typer must read the new signature, not the original's
    return wrapper
