"""``stepdpo-bench pairs ...``: the pipeline's stages one at a time, the whole chain, and importing public pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

pairs_app = typer.Typer(
    help="Build Step-DPO (and DPO) pairs from your own model: collect, locate, rectify, build "
    "(or, step-controlled: collect, control, build).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

CONFIG = typer.Option(None, "--config", help="pairs.yaml: any pipeline setting (see docs/pipeline.md).")
OUT = typer.Option(None, "--out", help="Pipeline directory (overrides `out:`).")
MODEL = typer.Option(None, "--model", help="Policy checkpoint or Hub id (overrides `model:`).")
SET = typer.Option(None, "--set", help="Override any setting: --set limit=200 --set locators=symbolic,rollout")


def _fail(msg: str) -> None:
    err.print(f"error: {msg}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(2)


def _run(
    stages: tuple[str, ...] | None, config: Path | None, out: Path | None, model: str | None, sets: list[str] | None
) -> None:
    from stepdpo_bench.runs import RunError
    from stepdpo_bench.samplers import SamplerError
    from stepdpo_bench.tasks import TaskError
    from trainer.data import PairsError

    from .config import PipelineError, load_config
    from .context import Pipeline
    from .run import print_funnel, run_stages, stages_for

    overrides: dict[str, Any] = {"out": str(out) if out else None, "model": model}
    for s in sets or []:
        if "=" not in s:
            _fail(f"--set {s!r}: expected key=value")
        k, v = s.split("=", 1)
        overrides[k.strip()] = v.strip()
    try:
        cfg = load_config(config, overrides)
        funnel = run_stages(Pipeline(cfg, err), stages or stages_for(cfg.mining))
    except (PipelineError, TaskError, SamplerError, RunError, PairsError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    print_funnel(funnel, console)
    console.print(f"funnel saved to {Path(cfg.out) / 'funnel.json'}", highlight=False, markup=False)


@pairs_app.command("collect")
def collect_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Stage 1: sample k step-format solutions per training problem and grade them."""
    _run(("collect",), config, out, model, sets)


@pairs_app.command("locate")
def locate_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Stage 2: find the first wrong step of each wrong solution (symbolic | rollout | judge)."""
    _run(("locate",), config, out, model, sets)


@pairs_app.command("rectify")
def rectify_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Stage 3: continue from the correct prefix; continuations reaching the answer give chosen steps."""
    _run(("rectify",), config, out, model, sets)


@pairs_app.command("control")
def control_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Step-controlled mining (SCDPO; `mining: step-controlled`): corrupt correct solutions from a chosen step."""
    _run(("control",), config, out, model, sets)


@pairs_app.command("build")
def build_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Stage 4: write Step-DPO pairs (Math-Step-DPO-10K format) and DPO pairs, after the contamination guard."""
    _run(("build",), config, out, model, sets)


@pairs_app.command("run")
def run_cmd(config: Path = CONFIG, out: Path = OUT, model: str = MODEL, sets: list[str] = SET) -> None:
    """Every stage of the config's mining in order (each resumes where it stopped); prints and saves the funnel."""
    _run(None, config, out, model, sets)


@pairs_app.command("import")
def import_cmd(
    source: str = typer.Argument(..., help="xinlai/Math-Step-DPO-10K (Hub) or a local JSON/JSONL file."),
    out: Path = typer.Option(..., "--out", help="Pairs JSONL to write."),
    guard: str = typer.Option("gsm8k,math,math500", "--guard", help="Eval sets to decontaminate against ('' = none)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local eval data (else the Hub)."),
    ngram: int = typer.Option(13, "--ngram"),
) -> None:
    """Convert published step pairs into our pairs format, dropping problems that overlap the eval sets."""
    from stepdpo_bench.runs import atomic_write_text
    from trainer.data import PairsError

    from .config import PipelineError
    from .public import import_pairs

    try:
        kept, dropped, warnings = import_pairs(
            source, [g for g in guard.split(",") if g.strip()], str(data_dir) if data_dir else None, ngram
        )
    except (PairsError, PipelineError) as exc:
        _fail(str(exc))
    for w in warnings:
        err.print(f"warning: {w}", highlight=False, markup=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    console.print(f"{len(kept)} pairs -> {out}; {len(dropped)} dropped by the contamination guard", markup=False)
