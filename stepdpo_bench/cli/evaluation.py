"""``stepdpo-bench eval`` and ``regrade``."""

from __future__ import annotations

import errno
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import typer

from .common import RESULTS, app, check_method, console, fail, note, split, with_sampler_options


def _check_sampling(
    limit: int | None, n: int, max_tokens: int, temperature: float, top_p: float, chunk_size: int | None
) -> None:
    """Every range is checked at the door: exit 2 with one line, before any data or model loads."""
    if limit is not None and limit < 1:
        fail(f"--limit must be at least 1, not {limit}")
    if n < 1:
        fail(f"--n must be at least 1, not {n}")
    if max_tokens < 1:
        fail(f"--max-tokens must be at least 1, not {max_tokens}")
    if temperature < 0:
        fail(f"--temperature must be 0 (greedy) or positive, not {temperature:g}")
    if not 0 < top_p <= 1:
        fail(f"--top-p must be in (0, 1], not {top_p:g}")
    if n > 1 and temperature == 0:
        note(f"warning: --n {n} with --temperature 0 gives {n} identical greedy samples per problem")
    if chunk_size is not None and chunk_size < 1:
        fail(f"--chunk-size must be at least 1, not {chunk_size}")


@app.command("eval")
@with_sampler_options
def eval_cmd(
    model: str = typer.Option(..., "--model", help="Checkpoint directory, LoRA adapter, Hub id, or served name."),
    tasks: str = typer.Option(
        "arith",
        "--tasks",
        help="Comma list: gsm8k, math, math500, odyssey, aime24, aime25, amc23, minerva_math, olympiadbench, "
        "college_math, arith, jsonl:PATH; 'reasoning' is the suite (those six and math500).",
    ),
    limit: int = typer.Option(None, help="Only the first N problems (after filters)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data laid out like shared/data (default: the Hub)."),
    split_name: str = typer.Option("test", "--split", help="Data split."),
    subjects: str = typer.Option(None, help="Comma list of subjects to keep (MATH 'type', Odyssey 'label')."),
    levels: str = typer.Option(None, help="Comma list of levels to keep (1-5 for MATH)."),
    prompt: str = typer.Option(None, help="Prompt template name (default: qwen2-boxed; arith-step for arith)."),
    prompt_file: Path = typer.Option(
        None, "--prompt-file", help="Your own template: text with one {question} placeholder, everything else literal."
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        help="Generation budget per sample (default 2048; 32768 when the tasks include a reasoning-suite set other "
        "than math500: one budget for every task of the command, clamped to the model's context).",
        show_default=False,
    ),
    n: int = typer.Option(1, "--n", help="Samples per problem (avg@k, pass@k, maj@k)."),
    metrics: str = typer.Option(
        None,
        "--metrics",
        help="avg@K, pass@K, maj@K to report, each with its interval, k <= --n (e.g. avg@32,pass@1,pass@8,maj@16).",
    ),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k", help="Sample from the k likeliest tokens (0: off)."),
    min_p: float = typer.Option(0.0, "--min-p", help="Drop tokens below min_p x the top token's probability (0: off)."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", help="1: off."),
    thinking: str = typer.Option(
        "auto",
        "--thinking",
        help="Thinking-trace delimiters: auto (from the tokenizer: <think>...</think>), none, or OPEN,CLOSE.  The "
        "trace is stored apart, only the answer after it is graded, a trace cut by the budget has no answer.",
    ),
    grade_cut_traces: bool = typer.Option(
        False,
        "--grade-cut-traces",
        help="Grade a sample whose thinking trace the budget cut on the trace's own last answer (default: it has "
        "no answer).  For comparison with tools that do; recorded in the run and its verdicts' reasons.",
    ),
    chat_template_kwargs: str = typer.Option(
        "",
        "--chat-template-kwargs",
        help="JSON object of chat-template variables, e.g. '{\"enable_thinking\": false}' (Qwen3): applied on hf "
        "and vllm, sent as chat_template_kwargs to an openai server.  Needs a chat prompt.",
    ),
    generation_config: str = typer.Option(
        "none",
        "--generation-config",
        help="none: the values given here, whatever the checkpoint says; model: the checkpoint's "
        "generation_config.json sampling values (temperature, top_p, top_k, min_p, repetition_penalty), applied "
        "and recorded as the run's.",
    ),
    seed: int = typer.Option(0),
    stop: list[str] = typer.Option(None, "--stop", help="Extra stop string (repeatable)."),
    results: Path = RESULTS,
    method: str = typer.Option("other", help="base | sft | dpo | step-dpo | other (default: from the trainer's tag)."),
    tag: list[str] = typer.Option(None, "--tag", help="Free-form leaderboard tag, e.g. main (repeatable)."),
    label: str = typer.Option(None, help="Display name on the leaderboard."),
    group: str = typer.Option(
        None, "--group", help="Recipe group: runs of one recipe across seeds, compared as a group (spread shown)."
    ),
    base_model: str = typer.Option(None, "--base-model", help="What this checkpoint was trained from."),
    chunk_size: int = typer.Option(None, "--chunk-size", help="Prompts per checkpointed chunk."),
    question_field: str = typer.Option(None, "--question-field", help="jsonl:PATH question field (question)."),
    answer_field: str = typer.Option(None, "--answer-field", help="jsonl:PATH gold answer field (answer)."),
    convention: str = typer.Option(None, help="jsonl:PATH answer convention: math (default), gsm8k, odyssey, arith."),
    lenient_grading: bool = typer.Option(
        False,
        "--lenient-grading",
        help="Grader 1.x rounding rule: any correctly rounded decimal matches an exact gold (recorded in the run).",
    ),
    locate: str = typer.Option(
        None,
        "--locate",
        help="Add step verdicts to each finished run: exact (arith), symbolic or judge (as `stepdpo-bench steps`).",
    ),
    judge_model: str = typer.Option(None, "--judge-model", help="--locate judge: the judge's model name."),
    judge_base_url: list[str] = typer.Option(
        None, "--judge-base-url", help="--locate judge: its server's /v1 URL (repeatable)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would run (problems, run id, new/resume/reuse) and exit; loads no model."
    ),
    sampler: Any = None,
) -> None:
    """Score a checkpoint on one or more tasks; each task becomes a resumable run under --results."""
    from ..at_k import parse_metrics
    from ..checkpoints import CheckpointError, inspect
    from ..evaluate import EvalRequest, execute, finished, plan
    from ..grading import TASKS
    from ..prompts import PromptError
    from ..reports import plan_table, results_table
    from ..runs import RunError
    from ..samplers import SamplerError, SamplingParams, identity_for, sampler_from_options
    from ..tasks import TaskError

    check_method(method)
    spec = None
    if locate is not None or judge_model or judge_base_url:
        from .steps_cmd import locator_spec

        spec = locator_spec(locate or "", judge_model, judge_base_url, 1024)
    _check_sampling(limit, n, 1 if max_tokens is None else max_tokens, temperature, top_p, chunk_size)
    if top_k < 0 or not 0 <= min_p <= 1 or repetition_penalty <= 0:
        fail("--top-k must be 0 (off) or more, --min-p in [0, 1], --repetition-penalty positive (1: off)")
    from ..thinking import parse_option

    try:
        parse_option(thinking)
    except ValueError as exc:
        fail(str(exc))
    template_kwargs = _template_kwargs(chat_template_kwargs)
    if generation_config not in ("none", "model"):
        fail(f"--generation-config {generation_config!r}: use none or model")
    try:
        parse_metrics(metrics, n)
    except ValueError as exc:
        fail(str(exc))
    if convention is not None and convention not in TASKS:
        fail(f"--convention {convention!r}: choose from {', '.join(TASKS)}")
    if prompt_file is not None and prompt is not None:
        fail("give --prompt or --prompt-file, not both (a prompt file is plain text; chat prompts use --prompt chat)")
    from ..tasks import expand_tasks

    task_list = expand_tasks(split(tasks) or fail("--tasks is empty"))
    if spec is not None and spec.name == "exact" and any(t != "arith" for t in task_list):
        fail("--locate exact needs each step's truth, which only arith has; use --locate symbolic or judge")
    if max_tokens is None:
        from ..tasks import BUDGET, default_budget

        max_tokens = default_budget(task_list)
        if max_tokens != BUDGET:
            note(f"--max-tokens {max_tokens} (the reasoning suite's default; the model's context clamps it)")
    jsonl_only = {"--convention": convention, "--question-field": question_field, "--answer-field": answer_field}
    given = [name for name, value in jsonl_only.items() if value is not None]
    if given and not any(t.startswith("jsonl:") for t in task_list):
        fail(
            f"{' and '.join(given)} apply to jsonl:PATH tasks only; built-in tasks have their own fields and convention"
        )
    try:
        backend = sampler.check()
        if backend != "openai":
            inspect(model)  # a broken checkpoint is refused here, before anything else
        who = identity_for(backend, model, sampler)
        params = SamplingParams(
            temperature, top_p, max_tokens, n, seed, tuple(stop or ()), top_k, min_p, repetition_penalty
        )
        if generation_config == "model":
            from ..checkpoints import generation_defaults

            params, taken = generation_defaults(model, params, sampler.revision)
            note(
                f"--generation-config model: {', '.join(taken) if taken else 'the checkpoint sets no sampling values'}"
            )
        plans = [
            plan(
                EvalRequest(
                    model=model,
                    task=t,
                    data_dir=data_dir,
                    split=split_name,
                    limit=limit,
                    subjects=split(subjects),
                    levels=split(levels),
                    prompt=prompt,
                    prompt_file=prompt_file,
                    sampling=params,
                    out_dir=results,
                    method=method,
                    label=label,
                    base_model=base_model,
                    tags=list(tag or []),
                    group=group,
                    chunk_size=chunk_size,
                    question_field=question_field or "question",
                    answer_field=answer_field or "answer",
                    convention=convention or "math",
                    lenient_grading=lenient_grading,
                    metrics=metrics,
                    thinking=thinking,
                    chat_template_kwargs=template_kwargs,
                    grade_cut_traces=grade_cut_traces,
                ),
                backend,
                who,
            )
            for t in task_list
        ]
    except (TaskError, PromptError, SamplerError, CheckpointError, RunError) as exc:
        fail(str(exc))
    for p in plans:
        skipped = p.task.meta.get("skipped_no_gold") or []
        if skipped:
            note(
                f"{p.task.name} ({p.task.split}): skipped {len(skipped)} record(s) with no gold answer: "
                + ", ".join(skipped[:3])
            )
    if dry_run:
        console.print(plan_table(plans))
        return
    done: list[Any] = []
    current = None
    with ExitStack() as locks:
        try:
            for p in plans:  # a second writer of any of these runs fails now, before a model loads
                locks.enter_context(p.run.exclusive())
            pending = [p for p in plans if finished(p) is None]
            engine = sampler_from_options(model, sampler, seed=seed) if pending else None
            try:
                for current in plans:
                    res = execute(current, engine) if current in pending else _reused(current)
                    done.append(res)
                    note(f"{current.task.name}: {res.status} run -> {res.run_dir.path}")
            finally:
                if engine is not None:
                    engine.close()
        except (TaskError, PromptError, SamplerError, CheckpointError, RunError, ValueError) as exc:
            _partial(done)
            fail(str(exc))
        except OSError as exc:
            _partial(done)
            where = exc.filename or (current.run.path if current else results)
            what = "No space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            fail(f"{where}: {what} (finished samples are kept; free space or fix it, then rerun to resume)")
        except KeyboardInterrupt:
            _partial(done)
            fail("interrupted; finished samples are kept, run the same command to resume", 130)
    console.print(results_table(done))
    if spec is not None:
        from ..reports import steps_table
        from ..samplers import SamplerError as JudgeError
        from .steps_cmd import run_locator

        try:
            console.print(steps_table(run_locator([r.run_dir for r in done], spec)))
        except (RunError, ValueError) as exc:
            fail(f"{exc} (the runs are finished and kept; add steps later with `stepdpo-bench steps`)")
        except JudgeError as exc:
            fail(f"judge {judge_model!r} failed ({exc}); verdicts so far are saved: rerun the same command")


def _template_kwargs(text: str) -> dict[str, Any] | None:
    """``--chat-template-kwargs``: a JSON object, refused in one line otherwise."""
    import json

    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"--chat-template-kwargs is not JSON ({exc.msg} at column {exc.colno}): "
            "write e.g. '{\"enable_thinking\": false}'"
        )
    if not isinstance(value, dict):
        fail(f"--chat-template-kwargs must be a JSON object of template variables, not {type(value).__name__}")
    return value or None


def _reused(p: Any) -> Any:
    from ..evaluate import EvalResult, finished, relabel

    changes = relabel(p)
    if changes:
        note(f"{p.task.name}: finished run reused, now with {'; '.join(changes)}")
    return EvalResult(p.run, finished(p), "reused")


def _partial(done: list[Any]) -> None:
    if done:
        from ..reports import results_table

        console.print(results_table(done, "Finished before the error"))


def resolve_targets(runs: list[str], results: Path) -> list[Any]:
    """Run references as run directories: a run's path, its id under ``results``, or a folder of runs (every one
    in it).  RunError when one is none of these."""
    from ..runs import MANIFEST, RunError, resolve_run

    targets: list[Any] = []
    for ref in runs:
        folder = Path(ref)
        if folder.is_dir() and not (folder / MANIFEST).is_file():  # a folder of runs: every one in it
            found = sorted(d for d in folder.iterdir() if (d / MANIFEST).is_file())
            if not found:
                raise RunError(f"{folder}: no runs in it (no */{MANIFEST})")
            targets += [resolve_run(str(d), results) for d in found]
        else:
            targets.append(resolve_run(ref, results))
    return targets


@app.command()
def regrade(
    runs: list[str] = typer.Argument(..., help="Run directories, run ids under --results, or a folder of runs."),
    results: Path = RESULTS,
) -> None:
    """Re-score finished runs with the current grader, without generating."""
    from ..evaluate import regrade as do_regrade
    from ..reports import results_table
    from ..runs import RunError

    try:
        targets = resolve_targets(runs, results)
        out = []
        for run in targets:
            m = run.manifest()
            if m is None or not m.done:
                note(f"skipped {run.path}: not a finished run")
                continue
            res = do_regrade(run, results)
            note(f"{run.path}: {res.manifest.regraded['changed']} verdicts changed -> {res.run_dir.path}")
            out.append(res)
    except (RunError, ValueError) as exc:
        fail(str(exc))
    console.print(results_table(out, "Regraded"))
