"""The ``stepdpo-bench`` command line.  Each sub-command is a thin shell over a library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

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


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def print_runs(results: list[Any], title: str = "Results") -> None:
    """One row per run: accuracy with its 95% CI, pass@k/maj@k when sampled, invalid and truncated shares."""
    sampled = any("pass@k" in r.manifest.get("metrics", {}) for r in results)
    table = Table(title=title)
    cols = [
        "task",
        "model",
        "n",
        "acc %",
        "95% CI",
        *(["pass@k", "maj@k"] if sampled else []),
        "invalid %",
        "trunc %",
        "tokens",
        "run",
    ]
    for col in cols:
        table.add_column(col, justify="left" if col in ("task", "model", "run") else "right")
    for r in results:
        m = r.manifest
        met = m.get("metrics", {})
        lo, hi = met.get("ci95", [None, None])
        row = [
            m["task"]["name"],
            m["model"]["label"] or m["model"]["name_or_path"],
            str(met.get("n_problems")),
            _pct(met.get("accuracy")),
            f"{_pct(lo)}-{_pct(hi)}",
        ]
        if sampled:
            for key in ("pass@k", "maj@k"):
                last = list(met.get(key, {}).items())[-1:]
                row.append(" ".join(f"@{k} {_pct(v)}" for k, v in last) or "-")
        row += [
            _pct(met.get("invalid_rate")),
            _pct(met.get("truncation_rate")),
            f"{met.get('mean_tokens', 0):.0f}",
            r.status,
        ]
        table.add_row(*row)
    console.print(table)


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", help="Checkpoint directory or Hub id (or served model name)."),
    tasks: str = typer.Option("arith", "--tasks", help="Comma list: gsm8k, math, math500, odyssey, arith, jsonl:PATH."),
    backend: str = typer.Option(None, help="vllm | hf | openai (default: vllm with a GPU, else hf)."),
    limit: int = typer.Option(None, help="Only the first N problems (after filters)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data laid out like shared/data (default: the Hub)."),
    split: str = typer.Option("test", help="Data split."),
    subjects: str = typer.Option(None, help="Comma list of subjects to keep (MATH 'type', Odyssey 'label')."),
    levels: str = typer.Option(None, help="Comma list of levels to keep (1-5 for MATH)."),
    prompt: str = typer.Option(None, help="Prompt template name (default: qwen2-boxed; arith-step for arith)."),
    prompt_file: Path = typer.Option(None, "--prompt-file", help="Your own template with a {question} placeholder."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Generation budget per sample."),
    n: int = typer.Option(1, "--n", help="Samples per problem (pass@k, maj@k)."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p"),
    seed: int = typer.Option(0),
    stop: list[str] = typer.Option(None, "--stop", help="Extra stop string (repeatable)."),
    out: Path = typer.Option(Path("results"), "--out", help="Where runs land."),
    method: str = typer.Option("other", help="base | sft | dpo | step-dpo | other (leaderboard tag)."),
    label: str = typer.Option(None, help="Display name on the leaderboard."),
    base_model: str = typer.Option(None, "--base-model", help="What this checkpoint was trained from."),
    revision: str = typer.Option(None, help="Hub revision."),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16."),
    batch_size: int = typer.Option(16, "--batch-size", help="hf: prompts per generate() call."),
    tp: int = typer.Option(1, "--tp", help="vllm: tensor-parallel size."),
    dp: int = typer.Option(1, "--dp", help="vllm: data-parallel replicas."),
    gpu_memory_utilization: float = typer.Option(None, "--gpu-memory-utilization", help="vllm."),
    enforce_eager: bool = typer.Option(False, "--enforce-eager", help="vllm: no CUDA graphs / compilation."),
    max_model_len: int = typer.Option(None, "--max-model-len", help="vllm: context length cap."),
    base_url: list[str] = typer.Option(None, "--base-url", help="openai: server URL ending in /v1 (repeat: fleet)."),
    concurrency: int = typer.Option(16, help="openai: requests in flight."),
    retries: int = typer.Option(6, help="openai: retries per request on 429/5xx/timeouts (exponential backoff)."),
    chunk_size: int = typer.Option(None, "--chunk-size", help="Prompts per checkpointed chunk."),
    question_field: str = typer.Option("question", "--question-field", help="jsonl:PATH question field."),
    answer_field: str = typer.Option("answer", "--answer-field", help="jsonl:PATH gold answer field."),
    convention: str = typer.Option("math", help="jsonl:PATH answer convention: math, gsm8k, odyssey, arith."),
) -> None:
    """Score a checkpoint on one or more tasks; each task becomes a resumable run under --out."""
    from .evaluate import EvalRequest, evaluate
    from .prompts import PromptError
    from .runs import RunError
    from .samplers import SamplerError, SamplingParams, auto_backend, make_sampler
    from .samplers.identity import is_local
    from .tasks import TaskError

    task_list = _split(tasks) or []
    backend = backend or auto_backend()
    if backend in ("hf", "vllm") and is_local(model) and not Path(model).expanduser().is_dir():
        _fail(f"--model {model}: no such checkpoint directory")
    if n < 1 or max_tokens < 1:
        _fail("--n and --max-tokens must be at least 1")
    params = SamplingParams(temperature, top_p, max_tokens, n, seed, tuple(stop or ()))
    results = []
    sampler = None
    try:
        sampler = make_sampler(
            backend,
            model,
            revision=revision,
            dtype=dtype,
            batch_size=batch_size,
            tensor_parallel_size=tp,
            data_parallel_size=dp,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
            max_model_len=max_model_len,
            base_urls=base_url,
            concurrency=concurrency,
            max_retries=retries,
        )
        for t in task_list:
            req = EvalRequest(
                model=model,
                task=t,
                data_dir=data_dir,
                split=split,
                limit=limit,
                subjects=_split(subjects),
                levels=_split(levels),
                prompt=prompt,
                prompt_file=prompt_file,
                sampling=params,
                out_dir=out,
                method=method,
                label=label,
                base_model=base_model,
                chunk_size=chunk_size,
                question_field=question_field,
                answer_field=answer_field,
                convention=convention,
            )
            res = evaluate(req, sampler, err)
            results.append(res)
            err.print(f"{t}: {res.status} run -> {res.run_dir.path}", highlight=False, soft_wrap=True)
    except (TaskError, PromptError, SamplerError, RunError, ValueError) as exc:
        if results:
            print_runs(results, "Finished before the error")
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc} (finished samples are kept; rerun to resume)")
    except KeyboardInterrupt:
        _fail("interrupted; finished samples are kept, run the same command to resume", 130)
    finally:
        if sampler is not None:
            sampler.close()
    print_runs(results)


@app.command()
def regrade(
    runs: list[str] = typer.Argument(..., help="Run directories or run ids under --out."),
    out: Path = typer.Option(Path("results"), "--out"),
) -> None:
    """Re-score finished runs with the current grader, without generating."""
    from .evaluate import regrade as do_regrade
    from .runs import RunError, resolve_run

    results = []
    try:
        for ref in runs:
            res = do_regrade(resolve_run(ref, out), out)
            changed = res.manifest["regraded"]["changed"]
            err.print(f"{ref}: {changed} verdicts changed -> {res.run_dir.path}", highlight=False)
            results.append(res)
    except (RunError, ValueError) as exc:
        _fail(str(exc))
    print_runs(results, "Regraded")


@app.command()
def ingest(
    results: Path = typer.Argument(Path("results"), help="Results directory holding run directories."),
    db: Path = typer.Option(None, "--db", help="DuckDB file (default RESULTS/leaderboard.duckdb)."),
) -> None:
    """Index finished runs (and training logs) into the leaderboard database; safe to repeat or run concurrently."""
    from .store import StoreError, default_db
    from .store import ingest as do_ingest

    try:
        rep = do_ingest(
            results, default_db(results, db), log=lambda msg: err.print(msg, highlight=False, soft_wrap=True)
        )
    except StoreError as exc:
        _fail(str(exc))
    console.print(
        f"ingested into {default_db(results, db)}: {len(rep.added)} added, {len(rep.replaced)} replaced, "
        f"{len(rep.unchanged)} unchanged, {len(rep.skipped)} skipped",
        highlight=False,
    )


@app.command("leaderboard")
def leaderboard_cmd(
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (for the default --db)."),
    db: Path = typer.Option(None, "--db", help="DuckDB file (default RESULTS/leaderboard.duckdb)."),
    task: str = typer.Option(None, help="Only this task."),
    tag: str = typer.Option(None, help="Only runs with this tag (method such as step-dpo, or source)."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | markdown."),
) -> None:
    """Print the leaderboard: accuracy with 95% CI per model and task; tied models share a tier."""
    import csv
    import io

    from .leaderboard import leaderboard
    from .store import StoreError, connect, default_db

    try:
        con = connect(default_db(results, db), read_only=True)
    except StoreError as exc:
        _fail(str(exc))
    rows = leaderboard(con, task, tag)
    con.close()
    cols = [
        "task",
        "tier",
        "label",
        "method",
        "base_model",
        "accuracy",
        "ci_lo",
        "ci_hi",
        "n_problems",
        "n",
        "prompt",
        "created_at",
        "run_id",
    ]
    if fmt == "json":
        print(json.dumps([{c: r[c] for c in cols} for r in rows], default=str, indent=1))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        w.writerows([[r[c] for c in cols] for r in rows])
        print(buf.getvalue(), end="")
        return
    show = [(r["task"], str(r["tier"]), r["label"], r["method"] or "", r["base_model"] or "", _pct(r["accuracy"]),
             f"{_pct(r['ci_lo'])}-{_pct(r['ci_hi'])}", str(r["n_problems"]), str(r["created_at"])[:10])
            for r in rows]  # fmt: skip
    heads = ("task", "tier", "model", "method", "base", "acc %", "95% CI", "n", "date")
    if fmt == "markdown":
        print("| " + " | ".join(heads) + " |")
        print("|" + "|".join("---" for _ in heads) + "|")
        for r in show:
            print("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
        return
    if fmt != "table":
        _fail(f"unknown --format {fmt!r}; use table, csv, json or markdown")
    table = Table(title="Leaderboard (same tier = not significantly different)")
    for h in heads:
        table.add_column(h, justify="right" if h in ("tier", "acc %", "95% CI", "n") else "left")
    for r in show:
        table.add_row(*r)
    console.print(table)


@app.command("app")
def app_cmd(
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (for the default --db)."),
    db: Path = typer.Option(None, "--db", help="DuckDB file (default RESULTS/leaderboard.duckdb)."),
    port: int = typer.Option(8501, help="Port on 127.0.0.1."),
    ingest_first: bool = typer.Option(True, "--ingest/--no-ingest", help="Index RESULTS before starting."),
) -> None:
    """Start the leaderboard app (Streamlit) on loopback."""
    import subprocess

    from .store import StoreError, default_db
    from .store import ingest as do_ingest

    path = default_db(results, db)
    try:
        if ingest_first and Path(results).is_dir():
            do_ingest(results, path, log=lambda msg: err.print(msg, highlight=False, soft_wrap=True))
    except StoreError as exc:
        _fail(str(exc))
    if not path.exists():
        _fail(f"{path}: no leaderboard yet; run `stepdpo-bench eval` then `stepdpo-bench ingest`")
    main_py = Path(__file__).resolve().parent.parent / "app" / "main.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--", "--db", str(path.resolve())]  # fmt: skip
    err.print(f"leaderboard app on http://127.0.0.1:{port}  (index: {path})", highlight=False, soft_wrap=True)
    raise typer.Exit(subprocess.call(cmd))


if __name__ == "__main__":
    sys.exit(app())
