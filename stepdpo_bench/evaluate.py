"""``stepdpo-bench eval``: task -> prompts -> sampler -> grading -> run files, resumable at any point.

An evaluation is planned before any model loads (``plan``: task data, filters, prompt, sampling and the run id),
so bad input and a second writer of the same run fail in a second, not after an engine start.  Then ``execute``
generates in chunks; after each chunk the graded samples are appended to ``samples.jsonl`` and fsynced, so a kill
loses at most the chunk in flight and the same command resumes where it stopped.  The sampler is passed in, so one
engine serves every task of an invocation (and the trainer's pipeline reuses it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import __version__, thinking
from .at_k import parse_metrics
from .contracts import TRAIN_TAG
from .grading import GRADER_VERSION, grade_batch, is_equivalent
from .manifest import GraderInfo, Manifest, ModelInfo, PromptInfo, SamplingInfo, TaskInfo, Timings
from .metrics import TRUNCATED, compute_metrics
from .prompts import PromptError, PromptTemplate, default_prompt, get_template, question_from_prompt, render
from .runs import SAMPLES_JSONL, RunDir, make_run_id, now_iso
from .samplers import ModelIdentity, Sampler, SamplingParams
from .steps import split_steps
from .tasks import Problem, Task, TaskError, load_task

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
    tags: list[str] = field(default_factory=list)
    group: str | None = None  # recipe group across seeds (metadata: not in the run id)
    chunk_size: int | None = None
    task_seed: int = 0
    question_field: str = "question"
    answer_field: str = "answer"
    convention: str = "math"
    lenient_grading: bool = False  # the pre-2.0 rule: any correctly rounded decimal matches an exact gold
    metrics: str | None = None  # --metrics avg@32,pass@8,maj@16: reported beside the defaults (not in the run id)
    thinking: str = "auto"  # trace delimiters: auto (from the tokenizer), none, or OPEN,CLOSE (thinking.py)
    chat_template_kwargs: dict[str, Any] | None = None  # variables for the chat template (enable_thinking)
    grade_cut_traces: bool = False  # a trace the budget cut is graded on its own text (peers' way), not no-answer

    @property
    def filters(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "subjects": self.subjects,
            "levels": self.levels,
            "problem_ids": len(self.problem_ids) if self.problem_ids is not None else None,
        }


@dataclass
class EvalPlan:
    """One task's run, decided before any model loads: what will be scored, how, and where it lands."""

    req: EvalRequest
    task: Task
    template: PromptTemplate
    params: SamplingParams
    backend: str
    identity: dict[str, Any]
    run: RunDir


@dataclass
class EvalResult:
    run_dir: RunDir
    manifest: Manifest
    status: str  # "new" | "resumed" | "reused"


def _tokenizer_of(sampler: Sampler) -> Any:
    get = getattr(sampler, "get_tokenizer", None)
    return get() if get is not None else None


def _problems_sha(problems: Sequence[Problem]) -> str:
    return hashlib.sha256("\n".join(p.id for p in problems).encode()).hexdigest()[:16]


def build_identity(
    task: Task, template: PromptTemplate, backend: str, model: ModelIdentity, params: SamplingParams, req: EvalRequest
) -> dict[str, Any]:
    """Everything that decides a sample or its verdict; the run id is its hash (tests/harness/test_identity.py
    enumerates the eval options and checks that each one is here or declared as not affecting results)."""
    task_id: dict[str, Any] = {
        "name": task.name,
        "split": task.split,
        "data_sha256": task.data_sha256,
        "problems_sha": _problems_sha(task.problems),
        "n_problems": len(task),
        "convention": task.convention,
    }
    if task.name.startswith("jsonl:"):
        task_id["fields"] = [req.question_field, req.answer_field]
    return {
        "model": {
            "name_or_path": model.name_or_path,
            "revision": model.revision,
            "fingerprint": model.fingerprint,
            **({"engine": model.engine} if model.engine else {}),
        },
        "task": task_id,
        "prompt": {"name": template.name, "fingerprint": template.fingerprint()},
        "sampling": {"backend": backend, **params.to_dict()},
        "grader_version": GRADER_VERSION,
        **({"grader": {"version": GRADER_VERSION, "lenient": True}} if req.lenient_grading else {}),
        # auto is decided by the model (already in the id): only a delimiter choice of the user's is, so runs
        # made before thinking traces keep their ids
        **({"thinking": req.thinking} if req.thinking != "auto" else {}),
        **({"chat_template_kwargs": req.chat_template_kwargs} if req.chat_template_kwargs else {}),
        **({"grade_cut_traces": True} if req.grade_cut_traces else {}),
    }


def plan(req: EvalRequest, backend: str, model: ModelIdentity) -> EvalPlan:
    """Load and filter the task, pick the prompt, fix the sampling and the run id.  No model is loaded."""
    task = load_task(
        req.task,
        req.data_dir,
        req.split,
        seed=req.task_seed,
        question_field=req.question_field,
        answer_field=req.answer_field,
        convention=req.convention,
    )
    full = task
    task = task.filtered(req.limit, req.subjects, req.levels, req.problem_ids)
    if not task.problems:
        raise TaskError(f"task {req.task!r}: no problems left after --limit/--subjects/--levels" + _choices(full))
    template = get_template(
        req.prompt or (None if req.prompt_file else default_prompt(task.convention)), req.prompt_file
    )
    if req.chat_template_kwargs and not template.chat:
        raise PromptError(
            f"--chat-template-kwargs reach a chat template, and prompt {template.name!r} is plain text; "
            "use a chat prompt (--prompt chat, qwen25-math-cot or deepseek-r1)"
        )
    params = replace(req.sampling, stop=tuple(dict.fromkeys([*template.stop, *req.sampling.stop])))
    identity = build_identity(task, template, backend, model, params, req)
    return EvalPlan(req, task, template, params, backend, identity, RunDir(Path(req.out_dir) / make_run_id(identity)))


def _choices(task: Task) -> str:
    """The subjects and levels a task has, for an empty filter's error."""
    subjects = sorted({p.subject for p in task.problems if p.subject})
    levels = sorted({str(p.level) for p in task.problems if p.level})
    parts = [f"subjects: {', '.join(subjects)}" if subjects else "", f"levels: {', '.join(levels)}" if levels else ""]
    parts = [p for p in parts if p]
    return f" ({'; '.join(parts)})" if parts else ""


def progress_bar(console: Console) -> Progress:
    """The bar for long work over items (eval, the pair pipeline's stages): count, ``rate`` field, elapsed, ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def evaluate(req: EvalRequest, sampler: Sampler, console: Console | None = None) -> EvalResult:
    """Run (or resume, or reuse) one task's evaluation with a ready sampler: plan, lock, execute."""
    p = plan(req, sampler.backend, sampler.identity())
    with p.run.exclusive():
        return execute(p, sampler, console)


def finished(p: EvalPlan) -> Manifest | None:
    """The plan's run manifest when that run is already done (the same command then reuses it, no model needed)."""
    m = p.run.manifest()
    return m if m is not None and m.done else None


def execute(p: EvalPlan, sampler: Sampler, console: Console | None = None) -> EvalResult:
    """Reuse, resume or start the planned run (the caller holds its lock); chunks are graded and fsynced."""
    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    old = p.run.manifest()
    if old is not None and old.done:
        return EvalResult(p.run, old, "reused")
    task, template, params, req = p.task, p.template, p.params, p.req
    as_messages = template.chat and sampler.backend == "openai"
    tokenizer = None if as_messages or not template.chat else _tokenizer_of(sampler)
    kwargs = req.chat_template_kwargs or None
    if kwargs and as_messages:
        sampler.chat_template_kwargs = kwargs  # type: ignore[attr-defined]  # sent with every chat request
    prompts = {q.id: render(template, q, tokenizer, as_messages, kwargs) for q in task.problems}
    first = next(iter(prompts.values()), None)
    think = thinking.detect(
        thinking.parse_option(req.thinking),
        _tokenizer_of(sampler) if sampler.backend != "openai" else _ServerSide(),
        first if isinstance(first, str) else None,
    )
    counter = _trace_counter(sampler, think)

    done = p.run.read_samples()
    reused = None
    if not done and params.temperature > 0 and params.n > 1:
        reused = _reuse_smaller_run(p)
        done = p.run.read_samples() if reused else done
    have: dict[str, set[int]] = {}
    for s in done:
        have.setdefault(s["problem_id"], set()).add(s["sample_idx"])
    todo = [q for q in task.problems if len(have.get(q.id, ())) < params.n]
    status = "resumed" if done and not reused else "new"
    if reused:
        console.print(
            f"{task.name}: samples 0-{reused['samples_per_problem'] - 1} of each problem reused from "
            f"{reused['from_run']} (the same draws); generating the rest",
            highlight=False,
            markup=False,
        )
    manifest = _manifest(p, old)
    manifest.extra["thinking"] = think.to_dict() if think else None
    if kwargs:
        manifest.extra["chat_template_kwargs"] = kwargs
    if reused:
        manifest.extra["reused_samples"] = reused
    elif old is not None and old.extra.get("reused_samples"):
        manifest.extra["reused_samples"] = old.extra["reused_samples"]
    default = 512 if sampler.backend == "vllm" else 128 if sampler.backend == "openai" else 32
    chunk = (old.extra.get("chunk_size") if old else None) or req.chunk_size or default  # fixed for the run's life
    manifest.extra["chunk_size"] = chunk
    p.run.drop_parquet()
    p.run.write_manifest(manifest)
    timings = manifest.timings
    total = len(task) * params.n
    missing = lambda q: len(have.get(q.id, ())) < params.n  # noqa: E731
    try:
        with progress_bar(console) as bar:
            tid = bar.add_task(
                f"{task.name} ({sampler.backend})", total=total, completed=total - len(todo) * params.n, rate=""
            )
            tokens_here, gen_here = 0, 0.0
            # chunk boundaries are positions in the task, so a resumed run generates each chunk exactly as an
            # uninterrupted one did (sampling draws depend on the batch); greedy needs only the missing problems
            for start in range(0, len(task.problems), chunk):
                whole = task.problems[start : start + chunk]
                batch = [q for q in whole if missing(q)]
                if not batch:
                    continue
                t0 = time.perf_counter()
                js: list[int] | None = None
                if params.temperature > 0:
                    # the whole chunk (hf draws depend on the batch), only the sample numbers still missing, each
                    # from its own seed: what an uninterrupted run, or one with fewer samples, drew for them
                    batch = whole
                    js = sorted({j for q in batch for j in range(params.n) if j not in have.get(q.id, ())})
                    outs = sampler.generate([prompts[q.id] for q in batch], params, [q.id for q in batch], js)
                else:
                    outs = sampler.generate([prompts[q.id] for q in batch], params)
                t1 = time.perf_counter()
                records = _grade_chunk(
                    p.run.run_id,
                    batch,
                    outs,
                    prompts,
                    template,
                    task.convention,
                    have,
                    req.lenient_grading,
                    js,
                    think,
                    counter,
                    req.grade_cut_traces,
                )
                t2 = time.perf_counter()
                p.run.append_samples(records)
                for r in records:
                    have.setdefault(r["problem_id"], set()).add(r["sample_idx"])
                timings.generate_s += t1 - t0
                timings.grade_s += t2 - t1
                new_tokens = sum(c.n_tokens for cs in outs for c in cs)
                timings.tokens_out += new_tokens
                tokens_here += new_tokens
                gen_here += t1 - t0
                bar.update(tid, advance=len(records), rate=f"{tokens_here / max(gen_here, 1e-9):.0f} tok/s")
    except BaseException as exc:
        timings.wall_s += time.perf_counter() - t_start
        manifest.status, manifest.updated_at = "failed", now_iso()
        manifest.error = f"{type(exc).__name__}: {exc}"[:500]
        p.run.write_manifest(manifest)
        raise
    samples = p.run.read_samples()
    manifest.metrics = compute_metrics(
        samples, _same(task.convention, req.lenient_grading), parse_metrics(req.metrics, params.n)
    )
    if manifest.metrics.get("context_clamped"):
        console.print(
            f"warning: {task.name}: {manifest.metrics['context_clamped']} samples hit the model's context window "
            f"before --max-tokens {params.max_tokens} (budget clamped so prompt + completion fit; finish reason "
            "'context', counted as truncated)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    p.run.compact(samples)
    timings.wall_s += time.perf_counter() - t_start
    manifest.status, manifest.updated_at, manifest.error = "done", now_iso(), None
    p.run.write_manifest(manifest)
    return EvalResult(p.run, manifest, status)


def _without_n(identity: dict[str, Any]) -> dict[str, Any]:
    return {**identity, "sampling": {k: v for k, v in identity.get("sampling", {}).items() if k != "n"}}


def _reuse_smaller_run(p: EvalPlan) -> dict[str, Any] | None:
    """A sampled run asked for K2 samples per problem starts from the K < K2 samples of a run that differs only in
    n (same model, data, prompt, sampling, grader), when one is under the same results folder: each sample is
    drawn from its own seed, so those K are exactly what this run would draw first.  They are copied (the other
    run stays as it is); the new run generates samples K..K2-1 only."""
    me = _without_n(p.identity)
    best: tuple[int, RunDir] | None = None
    for d in sorted(p.run.path.parent.glob(p.run.path.name.rsplit("__", 1)[0] + "__*")):
        if d == p.run.path or not d.is_dir():
            continue
        other = RunDir(d)
        m = other.manifest()
        if m is None or not m.done or _without_n(m.identity) != me or not 1 <= m.sampling.n < p.params.n:
            continue
        if best is None or m.sampling.n > best[0]:
            best = (m.sampling.n, other)
    if best is None:
        return None
    k, donor = best
    rows = [{**s, "run_id": p.run.run_id} for s in donor.read_samples() if s["sample_idx"] < k]
    p.run.path.mkdir(parents=True, exist_ok=True)
    p.run.append_samples(rows)
    return {"from_run": donor.run_id, "samples_per_problem": k, "samples": len(rows)}


def _manifest(p: EvalPlan, old: Manifest | None) -> Manifest:
    """The run's manifest, built in one place from the plan (an interrupted run keeps its start and timings)."""
    req, task, template, ident = p.req, p.task, p.template, p.identity
    tag = _trained_tag(req.model)
    return Manifest(
        run_id=p.run.run_id,
        status="running",
        created_at=old.created_at if old and old.created_at else now_iso(),
        updated_at=now_iso(),
        source="stepdpo-bench",
        model=ModelInfo(
            **ident["model"],
            label=req.label or Path(req.model.rstrip("/")).name,
            method=req.method if req.method != "other" else tag.get("method", "other"),
            base_model=req.base_model or tag.get("base_model"),
            tags=list(req.tags),
            group=req.group,
        ),
        task=TaskInfo(
            name=task.name,
            split=task.split,
            n_problems=len(task),
            data_sha256=task.data_sha256,
            convention=task.convention,
            source=task.source,
            problems_sha=ident["task"]["problems_sha"],
            filters={k: v for k, v in req.filters.items() if v is not None},
            meta=task.meta,
        ),
        prompt=PromptInfo(
            name=template.name,
            template=template.template,
            assistant_prefix=template.assistant_prefix,
            chat=template.chat,
            fingerprint=ident["prompt"]["fingerprint"],
        ),
        sampling=SamplingInfo(**ident["sampling"]),
        grader=GraderInfo(GRADER_VERSION, req.lenient_grading),
        code_version=__version__,
        identity=ident,
        timings=old.timings if old else Timings(),
    )


def relabel(p: EvalPlan) -> list[str]:
    """Apply the leaderboard metadata given on this command (label, method, base model, tags) to the plan's
    finished run, which is reused rather than rerun: ``eval ... --tag main`` on a run that exists tags it.  Tags
    are only added; other ``--metrics`` are computed from the stored samples.  Returns what changed, for the
    user; the run is re-ingested because its run.json changed."""
    m, req = p.run.manifest(), p.req
    if m is None or not m.done:
        return []
    changes = []
    if req.label and req.label != m.model.label:
        m.model.label = req.label
        changes.append(f"label {req.label}")
    if req.method != "other" and req.method != m.model.method:
        m.model.method = req.method
        changes.append(f"method {req.method}")
    if req.base_model and req.base_model != m.model.base_model:
        m.model.base_model = req.base_model
        changes.append(f"base model {req.base_model}")
    if req.group and req.group != m.model.group:
        m.model.group = req.group
        changes.append(f"group {req.group}")
    asked = [s.name for s in parse_metrics(req.metrics, m.sampling.n)]
    had = (m.metrics or {}).get("requested") or []
    if asked and asked != had:  # other --metrics: computed from the run's samples, nothing regenerated
        m.metrics = compute_metrics(
            p.run.read_samples(), _same(m.task.convention, m.grader.lenient), parse_metrics(req.metrics, m.sampling.n)
        )
        changes.append("metrics " + ", ".join(asked))
    new_tags = [t for t in req.tags if t not in m.model.tags]
    if new_tags:
        m.model.tags = [*m.model.tags, *new_tags]
        changes.append("tags +" + ", +".join(new_tags))
    if changes:
        m.updated_at = now_iso()
        p.run.write_manifest(m)
    return changes


def _trained_tag(model: str) -> dict[str, Any]:
    """The trainer's tag in a checkpoint it wrote (method, base model), else nothing."""
    tag_file = Path(model) / TRAIN_TAG
    try:
        tag = json.loads(tag_file.read_text()) if tag_file.is_file() else {}
    except (OSError, ValueError):
        return {}
    return tag if isinstance(tag, dict) else {}


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
    indices: Sequence[int] | None = None,
    think: thinking.ThinkSpec | None = None,
    count_tokens: Any = None,
    grade_cut: bool = False,
) -> list[dict[str, Any]]:
    items = [
        (p, indices[k] if indices is not None else k, c)
        for p, cs in zip(batch, outs, strict=True)
        for k, c in enumerate(cs)
        if (indices[k] if indices is not None else k) not in have.get(p.id, set())
    ]
    # the trace apart from the answer: a server's reasoning field, else the delimiters in the text
    parts = [
        thinking.Split(c.reasoning, c.text) if c.reasoning is not None else thinking.split(c.text, think)
        for _, _, c in items
    ]
    answered = [k for k, s in enumerate(parts) if s.answer is not None and not _cut_in_trace(items[k][2], s)]
    # --grade-cut-traces: a trace the budget cut is graded on its own text (as tools without trace handling do)
    inside = [k for k, s in enumerate(parts) if grade_cut and k not in set(answered) and s.reasoning]
    graded = [*answered, *inside]
    texts = [parts[k].answer or "" for k in answered] + [parts[k].reasoning or "" for k in inside]
    grades = grade_batch(
        texts,
        [items[k][0].gold for k in graded],
        convention,
        questions=[items[k][0].question for k in graded],
        lenient=lenient,
    )
    by_item = dict(zip(graded, grades, strict=True))
    cut_items = set(inside)
    records = []
    for k, (p, j, c) in enumerate(items):
        prompt = prompts[p.id]
        trace, answer = parts[k].reasoning, parts[k].answer
        g = by_item.get(k)
        in_trace = k in cut_items
        finish = c.finish_reason if (g is not None and not in_trace) or c.finish_reason == "stop" else thinking.THINKING
        why = ""
        if g is None:
            why = (
                "no answer: the budget ran out inside the thinking trace"
                if finish == thinking.THINKING
                else ("no answer: the thinking trace was never closed")
            )
        trace_tokens = c.reasoning_tokens
        if trace is not None and trace_tokens is None and finish == thinking.THINKING:
            trace_tokens = c.n_tokens  # every token it generated was the trace (delimiters included)
        if trace is not None and trace_tokens is None and count_tokens is not None:
            trace_tokens = count_tokens(c, trace)
        text = answer if trace is not None else c.text
        records.append(
            {
                "run_id": run_id,
                "problem_id": p.id,
                "sample_idx": j,
                "prompt": prompt if isinstance(prompt, str) else _messages_text(prompt),
                "completion": text or "",
                "steps": split_steps(template.assistant_prefix + (text or "")) if text else [],
                "pred": g.pred if g else None,
                "gold": p.gold,
                "correct": g.correct if g else False,
                "reason": (CUT_NOTE + g.reason if in_trace else g.reason) if g else why,
                "finish_reason": finish,
                "n_tokens": c.n_tokens,
                "subject": p.subject,
                "level": p.level,
                "method": g.method if g else "none",
                "reasoning": trace,
                "reasoning_tokens": trace_tokens,
            }
        )
    return records


CUT_NOTE = "graded inside a trace the budget cut (--grade-cut-traces): "


def _cut_in_trace(c: Any, s: thinking.Split) -> bool:
    """A server's parser returns an empty answer when the budget ran out while thinking."""
    return c.reasoning is not None and not (s.answer or "").strip() and c.finish_reason in TRUNCATED


class _ServerSide:
    """What ``thinking.detect`` knows of a served model's tokenizer: nothing but the usual pair (a trace in the
    text is split on ``<think>`` / ``</think>``; a reasoning parser's field needs no delimiters)."""

    chat_template = thinking.DEFAULT[0]


def _trace_counter(sampler: Sampler, think: thinking.ThinkSpec | None) -> Any:
    """A trace's length in tokens, ``(completion, trace) -> int``, or None where the sampler has no tokenizer.

    From the generated ids where the close delimiter is one token: the tokens up to and including it (all of
    them when the budget cut the trace), as a server's ``reasoning_tokens`` counts.  Otherwise the trace
    re-encoded, capped by the sample's tokens (bytes of a cut character re-encode longer than they came).
    """
    tok = _tokenizer_of(sampler) if sampler.backend != "openai" else None
    if tok is None:
        return None
    close = thinking.single_token_id(tok, think.close) if think else None

    def count(c: Any, trace: str) -> int:
        ids = getattr(c, "token_ids", None)
        if ids is not None and close is not None:
            return ids.index(close) + 1 if close in ids else len(ids)
        return min(len(tok.encode(trace, add_special_tokens=False)), c.n_tokens)

    return count


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
    if not manifest.done:
        raise ValueError(f"{run.path}: run is {manifest.status!r}; resume it with the same eval command first")
    samples = run.read_samples()
    convention = manifest.task.convention
    lenient = manifest.grader.lenient
    questions = [question_from_prompt(manifest.prompt.template or "", s.get("prompt") or "") for s in samples]
    cut = bool(manifest.identity.get("grade_cut_traces"))  # the run graded cut traces on their text: so again

    def in_trace(s: dict[str, Any]) -> bool:
        return cut and s.get("finish_reason") == thinking.THINKING and bool(s.get("reasoning"))

    t0 = time.perf_counter()
    grades = grade_batch(
        [s["reasoning"] if in_trace(s) else s["completion"] for s in samples],
        [s["gold"] for s in samples],
        convention,
        questions=questions,
        lenient=lenient,
    )
    identity = dict(manifest.identity)
    identity["grader_version"] = GRADER_VERSION
    new_id = make_run_id(identity) if identity.get("model") else run.run_id
    in_place = manifest.grader_version == GRADER_VERSION or new_id == run.run_id
    target = run if in_place else RunDir(Path(out_dir or run.path.parent) / new_id)
    new = []
    for s, g in zip(samples, grades, strict=True):
        if s.get("finish_reason") == thinking.THINKING and not in_trace(s):  # cut in its trace: no answer
            new.append({**s, "run_id": target.run_id})
            continue
        reason = CUT_NOTE + g.reason if in_trace(s) else g.reason
        new.append(
            {**s, "run_id": target.run_id, "pred": g.pred, "correct": g.correct, "reason": reason, "method": g.method}
        )
    changed = sum(a["correct"] != b["correct"] for a, b in zip(samples, new, strict=True))
    m = replace(
        manifest,
        run_id=target.run_id,
        grader=GraderInfo(GRADER_VERSION, lenient),
        identity=identity,
        updated_at=now_iso(),
        regraded={
            "at": now_iso(),
            "changed": changed,
            "from_grader_version": manifest.grader_version,
            "grade_s": time.perf_counter() - t0,
        },
        regraded_from=manifest.regraded_from if in_place else run.run_id,
    )
    if not in_place:
        target.path.mkdir(parents=True, exist_ok=True)
        (target.path / SAMPLES_JSONL).unlink(missing_ok=True)  # regraded twice: start the log afresh
        target.append_samples(new)
    asked = ",".join((manifest.metrics or {}).get("requested") or [])
    m.metrics = compute_metrics(new, _same(convention, lenient), parse_metrics(asked, manifest.sampling.n))
    target.compact(new)
    target.write_manifest(m)
    if in_place:  # step verdicts stay (same completions); their right-for-wrong-reasons follows the new grades
        from .step_runs import refresh_summaries

        refresh_summaries(target)
    return EvalResult(target, m, "regraded")
