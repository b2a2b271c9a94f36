"""The ``stepdpo-bench`` command line.  Each sub-command is a thin shell over a library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
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
    question: str = typer.Option(None, "--question", help="The problem text (a rounding it asks for is accepted)."),
    lenient: bool = typer.Option(False, "--lenient", help="Grader 1.x rule: correctly rounded decimals match."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Say whether PRED equals GOLD, and why.  Exit code 0 when equivalent, 1 when not, 2 on bad input."""
    from .grading import GRADER_VERSION, TASKS, extract_answer, is_equivalent

    if task not in TASKS:
        err.print(f"[red]error:[/] unknown task {task!r}; choose one of {', '.join(TASKS)}")
        raise typer.Exit(2)
    answer = extract_answer(pred, task) if extract else pred
    verdict = is_equivalent(answer, gold, task, question=question, lenient=lenient, timeout=timeout)
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
    err.print(f"[red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def print_runs(results: list[Any], title: str = "Results") -> None:
    """One row per run: accuracy with its 95% CI, pass@k/maj@k when sampled, invalid and truncated shares."""
    from .leaderboard import extraction_summary

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
        "answers found by",
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
            extraction_summary(met.get("extraction"), top=2),
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
    lenient_grading: bool = typer.Option(
        False,
        "--lenient-grading",
        help="Grader 1.x rounding rule: any correctly rounded decimal matches an exact gold (recorded in the run).",
    ),
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
                lenient_grading=lenient_grading,
            )
            res = evaluate(req, sampler, err)
            results.append(res)
            err.print(f"{t}: {res.status} run -> {res.run_dir.path}", highlight=False, soft_wrap=True, markup=False)
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
            results,
            default_db(results, db),
            log=lambda msg: err.print(msg, highlight=False, soft_wrap=True, markup=False),
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


def _pick_run(refs: list[str], results: Path, task: str | None) -> Any:
    """The run among ``refs`` for ``task``: a ``latest:`` query resolves per task; ids/paths must match it."""
    from .gate import GateError, resolve

    found = []
    for ref in refs:
        run = resolve(ref, results, task)
        if task is None or (run.manifest() or {}).get("task", {}).get("name") == task:
            found.append(run)
    if not found:
        raise GateError(f"no run for task {task!r} among {', '.join(refs)}")
    return found[0]


@app.command()
def check(
    baseline: list[str] = typer.Option(..., "--baseline", help="Run id, run dir, or latest:tag=T[,label=L] (repeat)."),
    candidate: list[str] = typer.Option(None, "--candidate", help="Run id, run dir or latest: query (repeat)."),
    task: str = typer.Option(None, "--task", help="Comma list of tasks (default: the runs' task)."),
    results: Path = typer.Option(Path("results"), "--results", help="Where runs live (for ids and queries)."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="Tolerated drop in accuracy points."),
    alpha: float = typer.Option(0.05, help="Significance level (split over tasks, Bonferroni)."),
    min_problems: int = typer.Option(100, "--min-problems", help="Refuse to judge on fewer common problems."),
    max_subject_drop: float = typer.Option(None, "--max-subject-drop", help="Also fail on a subject drop (points)."),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare despite prompt/data/grader drift."),
    inconclusive_ok: bool = typer.Option(False, "--inconclusive-ok", help="Exit 0 instead of 3 when inconclusive."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    markdown_out: Path = typer.Option(None, "--markdown", help="Write the PR-comment report here."),
    json_out: Path = typer.Option(None, "--json", help="Write the machine-readable report here."),
    junit_out: Path = typer.Option(None, "--junit", help="Write JUnit XML here."),
    app_url: str = typer.Option(None, "--app-url", help="Link broken problems into the app at this URL."),
    candidate_model: str = typer.Option(None, "--candidate-model", help="Evaluate this checkpoint as the candidate."),
    stratified_subset: int = typer.Option(None, "--stratified-subset", help="First score N stratified problems."),
    backend: str = typer.Option(None, help="For --candidate-model: vllm | hf | openai."),
    data_dir: Path = typer.Option(None, "--data-dir", help="For --candidate-model: local task data."),
    dtype: str = typer.Option("auto", help="For --candidate-model."),
    batch_size: int = typer.Option(16, "--batch-size", help="For --candidate-model with hf."),
    enforce_eager: bool = typer.Option(False, "--enforce-eager", help="For --candidate-model with vllm."),
    base_url: list[str] = typer.Option(None, "--base-url", help="For --candidate-model with openai."),
) -> None:
    """Gate a candidate against a baseline: exit 0 pass, 1 fail, 3 inconclusive, 2 unusable input."""
    from . import gate

    if not candidate and not candidate_model:
        _fail("give --candidate RUN or --candidate-model CKPT")
    tasks = _split(task) or [None]
    k = len(tasks)
    verdicts = []
    try:
        for t in tasks:
            base = _pick_run(baseline, results, t)
            bm = base.manifest()
            t = t or bm["task"]["name"]
            kw = dict(max_drop=max_drop / 100, alpha=alpha / k, min_problems=min_problems, seed=seed,
                      allow_mismatch=allow_mismatch,
                      max_subject_drop=None if max_subject_drop is None else max_subject_drop / 100)  # fmt: skip
            if candidate_model:
                v = _escalating_check(base, candidate_model, stratified_subset, kw, backend, data_dir, dtype,
                                      batch_size, enforce_eager, base_url, results)  # fmt: skip
            else:
                v = gate.judge(base, _pick_run(candidate, results, t), **kw)
            verdicts.append(v)
    except gate.GateError as exc:
        _fail(str(exc))
    head = gate.overall(verdicts)
    for v in verdicts:
        color = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[v.verdict]
        console.print(
            f"[{color}]{v.verdict.upper()}[/] {v.task}: {100 * v.acc_baseline:.1f}% -> {100 * v.acc_candidate:.1f}% "
            f"({100 * v.diff:+.1f} pts, {100 * (1 - v.alpha):g}% CI {100 * v.ci[0]:+.1f}..{100 * v.ci[1]:+.1f}, "
            f"p={v.p_value:.2g}, n={v.n}, MDE {100 * v.mde:.1f} pts) — {escape(v.reason)}",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        if v.verdict == "inconclusive" and v.n_needed:
            console.print(f"  about {v.n_needed} problems would decide (now {v.n})", highlight=False)
    if markdown_out:
        markdown_out.write_text(gate.markdown(verdicts, max_drop / 100, app_url))
    if json_out:
        json_out.write_text(json.dumps({"verdict": head, "max_drop": max_drop / 100, "alpha": alpha,
                                        "tasks": [v.to_dict() for v in verdicts]}, indent=1))  # fmt: skip
    if junit_out:
        junit_out.write_text(gate.junit(verdicts))
    code = gate.EXIT[head]
    raise typer.Exit(0 if code == 3 and inconclusive_ok else code)


def _escalating_check(base: Any, model: str, subset: int | None, kw: dict[str, Any], backend: str | None,
                      data_dir: Path | None, dtype: str, batch_size: int, enforce_eager: bool,
                      base_url: list[str] | None, results: Path) -> Any:  # fmt: skip
    """Evaluate the candidate with the baseline's task, prompt and sampling: first on a stratified subset of
    the baseline's problems, then, only if that is inconclusive, on all of them."""
    from . import gate
    from .evaluate import EvalRequest, evaluate
    from .samplers import SamplingParams, auto_backend, make_sampler

    bm = base.manifest()
    samples = base.read_samples()
    all_ids = sorted({s["problem_id"] for s in samples})
    samp = bm["sampling"]
    params = SamplingParams(samp["temperature"], samp["top_p"], samp["max_tokens"], samp["n"], samp["seed"])
    backend = backend or samp.get("backend") or auto_backend()
    sampler = make_sampler(backend, model, dtype=dtype, batch_size=batch_size, enforce_eager=enforce_eager,
                           base_urls=base_url, seed=samp["seed"])  # fmt: skip
    try:
        stages = [gate.stratified_ids(samples, subset, kw["seed"])] if subset and subset < len(all_ids) else []
        stages.append(all_ids)
        for ids in stages:
            req = EvalRequest(model=model, task=bm["task"]["name"], data_dir=data_dir, split=bm["task"]["split"],
                              problem_ids=ids, prompt=bm["prompt"]["name"], sampling=params, out_dir=results,
                              task_seed=(bm["task"].get("meta") or {}).get("seed", 0))  # fmt: skip
            res = evaluate(req, sampler, err)
            verdict = gate.judge(base, res.run_dir, **{**kw, "min_problems": min(kw["min_problems"], len(ids))})
            err.print(f"{bm['task']['name']}: {len(ids)} problems -> {verdict.verdict}", highlight=False)
            if verdict.verdict != gate.INCONCLUSIVE:
                break  # the subset decided: the full set is not needed
    finally:
        sampler.close()
    return verdict


@app.command()
def watch(
    ckpt_dir: Path = typer.Argument(..., help="Directory where training saves checkpoints (checkpoint-N/)."),
    tasks: str = typer.Option("math500,gsm8k", "--tasks", help="Comma list of tasks to evaluate each checkpoint on."),
    baseline: str = typer.Option(None, "--baseline", help="Gate each checkpoint against this run (id, dir, latest:)."),
    results: Path = typer.Option(Path("results"), "--results", help="Where runs land."),
    interval: float = typer.Option(60.0, help="Seconds between scans."),
    settle: float = typer.Option(30.0, help="A checkpoint counts once unchanged for this many seconds."),
    once: bool = typer.Option(False, "--once", help="One scan, then exit."),
    backend: str = typer.Option(None, help="vllm | hf (default: vllm with a GPU, else hf)."),
    data_dir: Path = typer.Option(None, "--data-dir"),
    limit: int = typer.Option(None, help="Only the first N problems of each task."),
    prompt: str = typer.Option(None, help="Prompt template name."),
    max_tokens: int = typer.Option(2048, "--max-tokens"),
    dtype: str = typer.Option("auto"),
    method: str = typer.Option("other", help="Leaderboard tag for these checkpoints."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="Gate margin in points."),
    min_problems: int = typer.Option(100, "--min-problems"),
) -> None:
    """Evaluate checkpoints as they appear, ingest them, gate them; one line per checkpoint; restart-safe."""
    from . import gate
    from .evaluate import EvalRequest, evaluate
    from .samplers import SamplingParams, auto_backend, make_sampler
    from .store import default_db
    from .store import ingest as do_ingest
    from .watch import WatchState
    from .watch import watch as do_watch

    task_list = _split(tasks) or []
    backend = backend or auto_backend()

    def process(ckpt: Path) -> dict[str, Any]:
        sampler = make_sampler(backend, str(ckpt), dtype=dtype)
        line: dict[str, Any] = {"checkpoint": ckpt.name, "tasks": {}}
        try:
            for t in task_list:
                req = EvalRequest(model=str(ckpt), task=t, data_dir=data_dir, limit=limit, prompt=prompt,
                                  sampling=SamplingParams(max_tokens=max_tokens), out_dir=results, method=method,
                                  label=f"{ckpt.parent.name}/{ckpt.name}")  # fmt: skip
                res = evaluate(req, sampler, Console(stderr=True, quiet=True))
                entry = {"run_id": res.run_dir.run_id, "accuracy": res.manifest["metrics"]["accuracy"]}
                if baseline:
                    try:
                        v = gate.judge(gate.resolve(baseline, results, t), res.run_dir, max_drop=max_drop / 100,
                                       alpha=0.05 / len(task_list), min_problems=min_problems)  # fmt: skip
                        entry["gate"] = v.verdict
                    except gate.GateError as exc:
                        entry["gate"] = f"unusable: {exc}"
                line["tasks"][t] = entry
        finally:
            sampler.close()
        do_ingest(results, default_db(results, None))
        return line

    def emit(line: dict[str, Any]) -> None:
        parts = [f"{t} {_pct(e['accuracy'])}%" + (f" [{e['gate']}]" if "gate" in e else "")
                 for t, e in line["tasks"].items()]  # fmt: skip
        console.print(f"{line['checkpoint']}: " + ", ".join(parts), highlight=False, soft_wrap=True, markup=False)

    if not ckpt_dir.is_dir():
        _fail(f"{ckpt_dir}: no such directory")
    try:
        do_watch(ckpt_dir, WatchState(results / "watch_state.json"), process, interval=interval, settle=settle,
                 once=once, emit=emit)  # fmt: skip
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


from trainer.pipeline.cli import pairs_app  # noqa: E402  (the Step-DPO pair pipeline's commands)

app.add_typer(pairs_app, name="pairs")

import_app = typer.Typer(help="Import other tools' results (re-graded by our grader, their verdict kept).")
app.add_typer(import_app, name="import")


@import_app.command("lm-eval")
def import_lm_eval_cmd(
    path: Path = typer.Argument(..., help="lm-eval --output_path folder (written with --log_samples)."),
    out: Path = typer.Option(Path("results"), "--out", help="Where the imported runs land."),
) -> None:
    """Import lm-evaluation-harness results and samples as runs (source=lm-eval)."""
    from .importers import ImportFormatError, import_lm_eval

    try:
        runs = import_lm_eval(path, out)
    except ImportFormatError as exc:
        _fail(str(exc))
    _print_imported(runs)


@import_app.command("step-dpo")
def import_step_dpo_cmd(
    path: Path = typer.Argument(..., help="JSON written by the Step-DPO repo's eval_math.py."),
    task: str = typer.Option("math", help="Which task the file scores: math, gsm8k, odyssey, ..."),
    model: str = typer.Option(None, help="Model name for the leaderboard (default: the file name)."),
    out: Path = typer.Option(Path("results"), "--out", help="Where the imported run lands."),
) -> None:
    """Import a Step-DPO eval_math.py output file as a run (source=step-dpo)."""
    from .importers import ImportFormatError, import_step_dpo

    try:
        run = import_step_dpo(path, out, task, model)
    except ImportFormatError as exc:
        _fail(str(exc))
    _print_imported([run])


def _print_imported(runs: list[Any]) -> None:
    for run in runs:
        m = run.manifest()
        theirs = m["metrics_source"]
        their_acc = next((v for k, v in theirs.items() if k.split(",")[0] in ("acc", "exact_match", "accuracy")
                          and isinstance(v, float)), None)  # fmt: skip
        console.print(f"{m['task']['name']}: ours {_pct(m['metrics']['accuracy'])}% vs theirs {_pct(their_acc)}% on "
                      f"{m['metrics']['n_samples']} samples, {m['disagreements']} disagreements -> {run.path}",
                      highlight=False, soft_wrap=True, markup=False)  # fmt: skip


@app.command()
def train(
    method: str = typer.Option(..., "--method", help="step-dpo | dpo"),
    model: str = typer.Option(..., "--model", help="Base checkpoint (directory or Hub id)."),
    data: str = typer.Option(..., "--data", help="Pairs JSONL/JSON (Math-Step-DPO-10K fields) or a Hub dataset id."),
    out: Path = typer.Option(..., "--out", help="Output checkpoint directory (resumes if it has checkpoints)."),
    config: Path = typer.Option(None, "--config", help="YAML/JSON with any of the options below."),
    epochs: float = typer.Option(None, help="Epochs (default 1)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Optimizer steps (overrides epochs)."),
    beta: float = typer.Option(None, help="DPO beta (default 0.1)."),
    lr: float = typer.Option(None, help="Learning rate (default 5e-7)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Pairs per micro-batch (default 8)."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Gradient accumulation steps (default 1)."),
    loss_type: str = typer.Option(None, "--loss-type", help="sigmoid | ipo | dpop (DPO-Positive)."),
    dpop_lambda: float = typer.Option(None, "--dpop-lambda", help="dpop: penalty weight (default 50)."),
    label_smoothing: float = typer.Option(None, "--label-smoothing"),
    rpo_alpha: float = typer.Option(None, "--rpo-alpha", help="Weight of an NLL term on chosen (RPO; default 0)."),
    reference: str = typer.Option(None, help="precompute | frozen | none (reference-free)."),
    prompt: str = typer.Option(None, help="Harness prompt template for the problem (default qwen2-boxed), or chat."),
    max_length: int = typer.Option(None, "--max-length"),
    max_completion_length: int = typer.Option(None, "--max-completion-length"),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (0 = full fine-tuning)."),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    save_steps: int = typer.Option(None, "--save-steps", help="Checkpoint every N steps (resume point)."),
    seed: int = typer.Option(None),
    dtype: str = typer.Option(None, help="auto | bf16 | fp32."),
) -> None:
    """Train DPO or Step-DPO from a base checkpoint (run under `accelerate launch` to scale out)."""
    from dataclasses import fields

    from trainer.data import PairsError
    from trainer.train import TrainConfig
    from trainer.train import train as do_train

    opts: dict[str, Any] = {}
    if config:
        text = config.read_text()
        if config.suffix in (".yaml", ".yml"):
            import yaml

            opts = yaml.safe_load(text) or {}
        else:
            opts = json.loads(text)
    local = locals()
    for f in fields(TrainConfig):
        if f.name in local and local[f.name] is not None and f.name not in ("config",):
            opts[f.name] = str(local[f.name]) if isinstance(local[f.name], Path) else local[f.name]
    unknown = set(opts) - {f.name for f in fields(TrainConfig)}
    if unknown:
        _fail(f"{config}: unknown option(s) {', '.join(sorted(unknown))}")
    try:
        path = do_train(TrainConfig(**opts), log=lambda m: err.print(m, highlight=False, markup=False))
    except (PairsError, ValueError, OSError) as exc:
        _fail(str(exc))
    console.print(f"checkpoint written to {path}; evaluate it with: stepdpo-bench eval --model {path}",
                  highlight=False, markup=False)  # fmt: skip


@app.command()
def demo(
    out: Path = typer.Option(Path("results/demo"), "--out", help="Everything lands here; re-running resumes."),
    smoke: bool = typer.Option(False, "--smoke", help="The same code path at toy sizes (about a minute)."),
    seed: int = typer.Option(0, help="Seed for the model, data order and sampling."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data (../shared/data) for a GSM8K slice too."),
) -> None:
    """The whole Step-DPO story on a CPU: tiny model + SFT, pair pipeline, DPO vs Step-DPO, eval, leaderboard."""
    from trainer.demo import config_for, run_demo
    from trainer.pipeline.config import PipelineError

    from .samplers import SamplerError
    from .tasks import TaskError

    try:
        run_demo(config_for(str(out), smoke, seed, str(data_dir) if data_dir else None), err)
    except (PipelineError, SamplerError, TaskError, RuntimeError, ValueError) as exc:
        _fail(f"demo stopped: {exc} (finished phases are kept; rerun the same command to resume)")


@app.command("lm-eval-tasks")
def lm_eval_tasks() -> None:
    """Print the directory of our lm-eval task YAMLs, for `lm_eval --include_path $(stepdpo-bench lm-eval-tasks)`."""
    print(Path(__file__).resolve().parent / "lm_eval_tasks")


@app.command("app")
def app_cmd(
    results: Path = typer.Option(Path("results"), "--results", help="Results directory (for the default --db)."),
    db: Path = typer.Option(None, "--db", help="DuckDB file (default RESULTS/leaderboard.duckdb)."),
    port: int = typer.Option(8501, help="Port on 127.0.0.1."),
    ingest_first: bool = typer.Option(True, "--ingest/--no-ingest", help="Index RESULTS before starting."),
) -> None:
    """Start the leaderboard app (Streamlit) on loopback."""
    import os

    from .store import StoreError, default_db
    from .store import ingest as do_ingest

    path = default_db(results, db)
    try:
        if ingest_first and Path(results).is_dir():
            do_ingest(results, path, log=lambda msg: err.print(msg, highlight=False, soft_wrap=True, markup=False))
    except StoreError as exc:
        _fail(str(exc))
    if not path.exists():
        _fail(f"{path}: no leaderboard yet; run `stepdpo-bench eval` then `stepdpo-bench ingest`")
    main_py = Path(__file__).resolve().parent.parent / "app" / "main.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(main_py), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--", "--db", str(path.resolve())]  # fmt: skip
    err.print(f"leaderboard app on http://127.0.0.1:{port}  (index: {path})", highlight=False, soft_wrap=True)
    sys.stderr.flush()
    os.execv(sys.executable, cmd)  # become the server: signals (Ctrl-C, a supervisor's SIGTERM) reach it directly


if __name__ == "__main__":
    sys.exit(app())
