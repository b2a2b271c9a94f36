"""``stepdpo-bench eval``: task -> prompts -> sampler -> grading -> run files, resumable at any point.

Generation goes in chunks; after each chunk the graded samples are appended to ``samples.jsonl`` and fsynced,
so a kill loses at most the chunk in flight and the same command resumes where it stopped.  The sampler is
passed in, so one engine serves every task of an invocation (and the trainer's pipeline reuses it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__
from .grading import GRADER_VERSION, grade_batch, is_equivalent
from .metrics import compute_metrics
from .prompts import PromptTemplate, default_prompt, get_template, question_from_prompt, render
from .runs import SAMPLES_JSONL, RunDir, make_run_id, now_iso
from .samplers import Sampler, SamplingParams
from .steps import split_steps
from .tasks import Problem, Task, load_task

DEFAULT_MAX_TOKENS = 2048  # long enough for full MATH solutions; truncation is reported, never silent


@dataclass
class EvalRequest:
    """Everything that defines one task's run, as the CLI received it."""

    model: str
    task: str
    data_dir: Path | None = None
    split: str = "test"
    limit: int | None = None
    subjects: list[str] | None = None
    levels: list[str] | None = None
    problem_ids: list[str] | None = None  # an explicit subset (the gate's stratified escalation)
    prompt: str | None = None
    prompt_file: Path | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    out_dir: Path = Path("results")
    method: str = "other"
    label: str | None = None
    base_model: str | None = None
    chunk_size: int | None = None
    task_seed: int = 0
    question_field: str = "question"
    answer_field: str = "answer"
    convention: str = "math"
    lenient_grading: bool = False  # the pre-2.0 rule: any correctly rounded decimal matches an exact gold


@dataclass
class EvalResult:
    run_dir: RunDir
    manifest: dict[str, Any]
    status: str  # "new" | "resumed" | "reused"


def _tokenizer_of(sampler: Sampler) -> Any:
    get = getattr(sampler, "get_tokenizer", None)
    return get() if get is not None else None


def _problems_sha(problems: Sequence[Problem]) -> str:
    return hashlib.sha256("\n".join(p.id for p in problems).encode()).hexdigest()[:16]


def grader_identity(lenient: bool) -> dict[str, Any]:
    """What decides verdicts, besides the grader's code: its version and whether lenient rounding was on."""
    return {"version": GRADER_VERSION, "lenient": bool(lenient)}


def build_identity(task: Task, template: PromptTemplate, sampler: Sampler, params: SamplingParams,
                   lenient: bool = False) -> dict[str, Any]:  # fmt: skip
    ident = sampler.identity()
    return {
        "model": {"name_or_path": ident.name_or_path, "revision": ident.revision, "fingerprint": ident.fingerprint},
        "task": {
            "name": task.name,
            "split": task.split,
            "data_sha256": task.data_sha256,
            "problems_sha": _problems_sha(task.problems),
            "n_problems": len(task),
        },
        "prompt": {"name": template.name, "fingerprint": template.fingerprint()},
        "sampling": {"backend": sampler.backend, **params.to_dict()},
        "grader_version": GRADER_VERSION,
        **({"grader": grader_identity(lenient)} if lenient else {}),
    }


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )  # fmt: skip


def evaluate(req: EvalRequest, sampler: Sampler, console: Console | None = None) -> EvalResult:
    """Run (or resume, or reuse) one task's evaluation and return its run directory and manifest."""
    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    task = load_task(
        req.task,
        req.data_dir,
        req.split,
        seed=req.task_seed,
        question_field=req.question_field,
        answer_field=req.answer_field,
        convention=req.convention,
    )
    task = task.filtered(req.limit, req.subjects, req.levels, req.problem_ids)
    if not task.problems:
        raise ValueError(f"task {req.task!r}: no problems left after --limit/--subjects/--levels filters")
    template = get_template(
        req.prompt or (None if req.prompt_file else default_prompt(task.convention)), req.prompt_file
    )
    params = SamplingParams(
        **{**req.sampling.to_dict(), "stop": tuple(dict.fromkeys([*template.stop, *req.sampling.stop]))}
    )
    as_messages = template.chat and sampler.backend == "openai"
    tokenizer = None if as_messages or not template.chat else _tokenizer_of(sampler)
    prompts = {p.id: render(template, p, tokenizer, as_messages) for p in task.problems}

    identity = build_identity(task, template, sampler, params, req.lenient_grading)
    run = RunDir(Path(req.out_dir) / make_run_id(identity))
    with run.exclusive():
        return _run(req, sampler, console, t_start, task, template, params, prompts, identity, run)


def _run(
    req: EvalRequest,
    sampler: Sampler,
    console: Console,
    t_start: float,
    task: Task,
    template: PromptTemplate,
    params: SamplingParams,
    prompts: dict[str, Any],
    identity: dict[str, Any],
    run: RunDir,
) -> EvalResult:
    """Reuse, resume or start ``run`` while holding its lock; chunks are graded and fsynced as they finish."""
    old = run.manifest()
    if old and old.get("status") == "done":
        return EvalResult(run, old, "reused")

    done = run.read_samples()
    have: dict[str, set[int]] = {}
    for s in done:
        have.setdefault(s["problem_id"], set()).add(s["sample_idx"])
    todo = [p for p in task.problems if len(have.get(p.id, ())) < params.n]
    status = "resumed" if done else "new"
    manifest: dict[str, Any] = {
        "run_id": run.run_id,
        "status": "running",
        "created_at": (old or {}).get("created_at") or now_iso(),
        "updated_at": now_iso(),
        "source": "stepdpo-bench",
        "model": {
            **identity["model"],
            **_trained_tags(req),
            "label": req.label or Path(req.model.rstrip("/")).name,
        },
        "task": {
            "name": task.name,
            "split": task.split,
            "n_problems": len(task),
            "data_sha256": task.data_sha256,
            "convention": task.convention,
            "source": task.source,
            "meta": task.meta,
        },
        "prompt": {
            "name": template.name,
            "template": template.template,
            "assistant_prefix": template.assistant_prefix,
            "chat": template.chat,
        },
        "sampling": identity["sampling"],
        "grader_version": GRADER_VERSION,
        "grader": grader_identity(req.lenient_grading),
        "code_version": __version__,
        "identity": identity,
        "timings": (old or {}).get("timings") or {"wall_s": 0.0, "generate_s": 0.0, "grade_s": 0.0, "tokens_out": 0},
    }
    run.drop_parquet()
    run.write_manifest(manifest)
    timings = manifest["timings"]
    chunk = req.chunk_size or (512 if sampler.backend == "vllm" else 128 if sampler.backend == "openai" else 32)
    total = len(task) * params.n
    try:
        with _progress(console) as bar:
            tid = bar.add_task(
                f"{task.name} ({sampler.backend})", total=total, completed=total - len(todo) * params.n, rate=""
            )
            tokens_here, gen_here = 0, 0.0
            for start in range(0, len(todo), chunk):
                batch = todo[start : start + chunk]
                t0 = time.perf_counter()
                outs = sampler.generate([prompts[p.id] for p in batch], params)
                t1 = time.perf_counter()
                records = _grade_chunk(run.run_id, batch, outs, prompts, template, task.convention, have,
                                       req.lenient_grading)  # fmt: skip
                t2 = time.perf_counter()
                run.append_samples(records)
                timings["generate_s"] += t1 - t0
                timings["grade_s"] += t2 - t1
                new_tokens = sum(c.n_tokens for cs in outs for c in cs)
                timings["tokens_out"] += new_tokens
                tokens_here += new_tokens
                gen_here += t1 - t0
                bar.update(tid, advance=len(batch) * params.n, rate=f"{tokens_here / max(gen_here, 1e-9):.0f} tok/s")
    except BaseException as exc:
        timings["wall_s"] += time.perf_counter() - t_start
        manifest.update(status="failed", updated_at=now_iso(), error=f"{type(exc).__name__}: {exc}"[:500])
        run.write_manifest(manifest)
        raise
    samples = run.read_samples()
    manifest["metrics"] = compute_metrics(samples, _same(task.convention, req.lenient_grading))
    if manifest["metrics"].get("context_clamped"):
        console.print(
            f"warning: {task.name}: {manifest['metrics']['context_clamped']} samples hit the model's context window "
            f"before --max-tokens {params.max_tokens} (budget clamped so prompt + completion fit; finish reason "
            "'context', counted as truncated)", highlight=False, markup=False, soft_wrap=True,
        )  # fmt: skip
    run.compact(samples)
    timings["wall_s"] += time.perf_counter() - t_start
    manifest.update(status="done", updated_at=now_iso())
    manifest.pop("error", None)
    run.write_manifest(manifest)
    return EvalResult(run, manifest, status)


def _trained_tags(req: EvalRequest) -> dict[str, Any]:
    """Method and base model for the leaderboard: as given, else from the trainer's tag in the checkpoint."""
    tag_file = Path(req.model) / "stepdpo_train.json"
    tag = json.loads(tag_file.read_text()) if tag_file.is_file() else {}
    method = req.method if req.method != "other" else tag.get("method", "other")
    return {"base_model": req.base_model or tag.get("base_model"), "method": method}


def _same(convention: str, lenient: bool) -> Any:
    """Answer equivalence for maj@k votes, under the run's grading rules."""
    return lambda a, b: bool(is_equivalent(a, b, convention, lenient=lenient))


def _grade_chunk(
    run_id: str,
    batch: Sequence[Problem],
    outs: Sequence[Sequence[Any]],
    prompts: dict[str, Any],
    template: PromptTemplate,
    convention: str,
    have: dict[str, set[int]],
    lenient: bool = False,
) -> list[dict[str, Any]]:
    items = [
        (p, j, c) for p, cs in zip(batch, outs, strict=True) for j, c in enumerate(cs) if j not in have.get(p.id, set())
    ]
    grades = grade_batch([c.text for _, _, c in items], [p.gold for p, _, _ in items], convention,
                         questions=[p.question for p, _, _ in items], lenient=lenient)  # fmt: skip
    records = []
    for (p, j, c), g in zip(items, grades, strict=True):
        prompt = prompts[p.id]
        records.append({
            "run_id": run_id, "problem_id": p.id, "sample_idx": j,
            "prompt": prompt if isinstance(prompt, str) else _messages_text(prompt),
            "completion": c.text, "steps": split_steps(template.assistant_prefix + c.text),
            "pred": g.pred, "gold": p.gold, "correct": g.correct, "reason": g.reason,
            "finish_reason": c.finish_reason, "n_tokens": c.n_tokens, "subject": p.subject, "level": p.level,
            "method": g.method,
        })  # fmt: skip
    return records


def _messages_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(f"<{m['role']}>\n{m['content']}" for m in messages)


def regrade(run: RunDir, out_dir: Path | None = None) -> EvalResult:
    """Re-score a finished run's completions with the current grader, without generating.

    Same grader version: the run is re-scored in place.  A newer grader: a new run (new id, since the grader
    version is part of the identity) is written beside it, ``regraded_from`` naming the original.
    """
    manifest = run.manifest()
    if manifest is None:
        raise ValueError(f"{run.path}: no run.json")
    if manifest.get("status") != "done":
        raise ValueError(f"{run.path}: run is {manifest.get('status')!r}; resume it with the same eval command first")
    samples = run.read_samples()
    convention = manifest["task"].get("convention", "math")
    lenient = bool((manifest.get("grader") or {}).get("lenient"))
    template = (manifest.get("prompt") or {}).get("template") or ""
    questions = [question_from_prompt(template, s.get("prompt") or "") for s in samples]
    t0 = time.perf_counter()
    grades = grade_batch([s["completion"] for s in samples], [s["gold"] for s in samples], convention,
                         questions=questions, lenient=lenient)  # fmt: skip
    identity = dict(manifest.get("identity") or {})
    identity["grader_version"] = GRADER_VERSION
    new_id = make_run_id(identity) if identity.get("model") else run.run_id
    in_place = manifest.get("grader_version") == GRADER_VERSION or new_id == run.run_id
    target = run if in_place else RunDir(Path(out_dir or run.path.parent) / new_id)
    new = []
    for s, g in zip(samples, grades, strict=True):
        new.append({**s, "run_id": target.run_id, "pred": g.pred, "correct": g.correct, "reason": g.reason,
                    "method": g.method})  # fmt: skip
    changed = sum(a["correct"] != b["correct"] for a, b in zip(samples, new, strict=True))
    m = {
        **manifest,
        "run_id": target.run_id,
        "grader_version": GRADER_VERSION,
        "grader": grader_identity(lenient),
        "identity": identity,
        "updated_at": now_iso(),
        "regraded": {
            "at": now_iso(),
            "changed": changed,
            "from_grader_version": manifest.get("grader_version"),
            "grade_s": time.perf_counter() - t0,
        },
    }
    if not in_place:
        m["regraded_from"] = run.run_id
        target.path.mkdir(parents=True, exist_ok=True)
        (target.path / SAMPLES_JSONL).unlink(missing_ok=True)  # regraded twice: start the log afresh
        target.append_samples(new)
    m["metrics"] = compute_metrics(new, _same(convention, lenient))
    target.compact(new)
    target.write_manifest(m)
    return EvalResult(target, m, "regraded")
