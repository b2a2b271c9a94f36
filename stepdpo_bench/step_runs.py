"""``stepdpo-bench steps``: step verdicts for a finished run, stored beside its samples, without regenerating.

``results/<run>/steps/<locator id>/`` holds ``locator.json`` (what the verdicts depend on: the locator, its
version, and for a judge its model and prompt), ``verdicts.jsonl`` (one line per sample, appended chunk by chunk
and fsynced: a kill loses at most the chunk in flight, a rerun judges only what is missing) and, once every
sample has its verdicts, ``summary.json`` (the step metrics).  The locator id is a hash of ``locator.json``, so
the same command finds its own verdicts again and another judge or prompt gets its own directory.  The index
(``ingest``) loads a run's finished verdicts with the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .locators import LOCATORS, StepVerdicts
from .runs import RunDir, RunError, append_log, atomic_write_text, canonical_json, now_iso, read_log
from .step_metrics import join, step_metrics

STEPS_DIR = "steps"
LOCATOR_JSON = "locator.json"
VERDICTS_JSONL = "verdicts.jsonl"
SUMMARY_JSON = "summary.json"
LOCATOR_VERSION = "1"
PREFERENCE = ("exact", "symbolic", "judge")  # which verdicts a view shows when a run has several


@dataclass
class LocatorSpec:
    """Which locator, and for a judge which model at which endpoint (the endpoint and key are not identity)."""

    name: str
    judge_model: str | None = None
    judge_base_urls: list[str] = field(default_factory=list)
    judge_api_key: str | None = None
    judge_max_tokens: int = 1024
    judge_timeout: float = 120.0
    judge_retries: int = 3

    def check(self) -> LocatorSpec:
        if self.name not in LOCATORS:
            raise ValueError(
                f"--locator {self.name!r}: choose one of {', '.join(LOCATORS)} (rollout is the pair pipeline's: "
                "it needs the policy)"
            )
        if self.name == "judge" and not (self.judge_model and self.judge_base_urls):
            raise ValueError(
                "--locator judge needs --judge-model and --judge-base-url (any OpenAI-compatible /v1, e.g. vllm serve)"
            )
        if self.name != "judge" and (self.judge_model or self.judge_base_urls):
            raise ValueError(f"--judge-model / --judge-base-url are for --locator judge, not {self.name}")
        return self

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"locator": self.name, "version": LOCATOR_VERSION}
        if self.name == "judge":
            from .locators.judge import STEPS_PROMPT, prompt_sha

            ident["judge"] = {
                "model": self.judge_model,
                "prompt_sha": prompt_sha(STEPS_PROMPT),
                "max_tokens": self.judge_max_tokens,
            }
        return ident

    @property
    def id(self) -> str:
        return f"{self.name}-{hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()[:10]}"

    @property
    def display(self) -> str:
        return f"judge ({self.judge_model})" if self.name == "judge" else self.name


@dataclass
class StepsResult:
    run: RunDir
    spec: LocatorSpec
    path: Path
    summary: dict[str, Any]
    judged: int  # samples judged by this call
    reused: int  # samples whose verdicts an earlier (interrupted) call had saved


def _exact_problems(run: RunDir, manifest: Any) -> dict[str, Any]:
    """The run's arith problems (regenerated from its recorded seed and config, checked against its checksum)."""
    from .locators.exact import has_truth
    from .tasks import arith

    task = manifest.task
    if task.name != "arith":
        raise ValueError(
            f"{run.path}: --locator exact needs a task that knows each step's truth (arith); this run is "
            f"{task.name}: use --locator symbolic or judge"
        )
    meta = task.meta or {}
    cfg = arith.ArithConfig(**meta.get("config", {}))
    t = arith.generate(task.split, seed=int(meta.get("seed", 0)), cfg=cfg)
    if task.data_sha256 and t.data_sha256 != task.data_sha256:
        raise ValueError(
            f"{run.path}: its arith data (sha {task.data_sha256[:12]}) is not what seed {meta.get('seed', 0)} "
            "generates here; the exact locator cannot rebuild its step truth"
        )
    probs = {p.id: p for p in t.problems}
    bad = [pid for pid, p in probs.items() if not has_truth(p)]
    if bad:
        raise ValueError(f"{run.path}: problem {bad[0]} has no step truth")
    return probs


class _Locator:
    """The chosen locator over a run's samples, a chunk at a time."""

    def __init__(self, spec: LocatorSpec, run: RunDir, manifest: Any) -> None:
        self.spec = spec
        self.problems = _exact_problems(run, manifest) if spec.name == "exact" else {}
        self.template = manifest.prompt.template or ""
        self.judge = None
        if spec.name == "judge":
            from .locators.judge import StepJudge

            self.judge = StepJudge(
                spec.judge_model or "",
                spec.judge_base_urls,
                spec.judge_api_key,
                spec.judge_max_tokens,
                spec.judge_timeout,
                spec.judge_retries,
            )

    def __call__(self, chunk: Sequence[dict[str, Any]]) -> list[StepVerdicts]:
        from .locators import exact, symbolic

        if self.spec.name == "symbolic":
            return [symbolic.verdicts(list(s.get("steps") or [])) for s in chunk]
        if self.spec.name == "exact":
            out = []
            for s in chunk:
                p = self.problems.get(s["problem_id"])
                if p is None:
                    raise ValueError(f"sample {s['problem_id']}: not a problem of the regenerated arith task")
                out.append(exact.verdicts(p, list(s.get("steps") or [])))
            return out
        from .locators.judge import JudgeItem
        from .prompts import question_from_prompt

        items = [
            JudgeItem(
                question_from_prompt(self.template, s.get("prompt") or "") or (s.get("prompt") or ""),
                s.get("gold") or "",
                s.get("pred"),
                list(s.get("steps") or []),
            )
            for s in chunk
        ]
        return self.judge.verdicts(items)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.judge is not None:
            self.judge.close()


def steps_dir(run: RunDir, spec: LocatorSpec) -> Path:
    return run.path / STEPS_DIR / spec.id


def locate_run(
    run: RunDir,
    spec: LocatorSpec,
    *,
    chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> StepsResult:
    """Step verdicts for every sample of a finished run (resuming what a killed call saved), then its metrics.

    ``progress(done, total)`` is called after each chunk.  Bad input (an unfinished run, a task without step
    truth for ``exact``, a judge without an endpoint) raises ValueError/RunError in one line before any work.
    """
    spec.check()
    m = run.manifest()
    if m is None:
        raise RunError(f"{run.path}: no run.json")
    if not m.done:
        raise RunError(f"{run.path}: run is {m.status!r}; finish it (rerun its eval command) before adding steps")
    samples = run.read_samples()
    out = steps_dir(run, spec)
    log = out / VERDICTS_JSONL
    if len({(s["problem_id"], int(s["sample_idx"])) for s in samples} - _keys(log)):
        locator: _Locator | None = _Locator(spec, run, m)  # refuses a task without step truth before any write
    else:
        locator = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        lj = out / LOCATOR_JSON
        if not lj.is_file():
            atomic_write_text(lj, json.dumps({"run_id": m.run_id, **spec.identity()}, indent=2))
        with RunDir(out).exclusive():
            done = _keys(log)  # again, under the lock: another call may have added verdicts meanwhile
            todo = [s for s in samples if (s["problem_id"], int(s["sample_idx"])) not in done]
            reused = len(samples) - len(todo)
            if todo:
                (out / SUMMARY_JSON).unlink(missing_ok=True)  # verdicts are being added: no summary until all are in
                locator = locator or _Locator(spec, run, m)
            for i in range(0, len(todo), chunk_size):
                chunk = todo[i : i + chunk_size]
                res = locator(chunk)  # type: ignore[misc]
                append_log(log, [_row(s, v, spec) for s, v in zip(chunk, res, strict=True)])
                if progress:
                    progress(reused + i + len(chunk), len(samples))
            summary = _write_summary(out, m.run_id, spec.name, spec.display, spec.identity(), samples)
    finally:
        if locator is not None:
            locator.close()
    return StepsResult(run, spec, out, summary, len(todo), reused)


def _keys(log: Path) -> set[tuple[str, int]]:
    return {(r["problem_id"], int(r["sample_idx"])) for r in read_log(log)}


def _write_summary(
    out: Path, run_id: str, name: str, display: str, ident: dict[str, Any], samples: list[dict[str, Any]]
) -> dict[str, Any]:
    """The metrics of the verdicts in ``out`` joined with the samples' grades; the file is rewritten only when
    they changed (a rewrite re-ingests the run)."""
    metrics = step_metrics(join(samples, _dedup(read_log(out / VERDICTS_JSONL))))
    path = out / SUMMARY_JSON
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if json.dumps(old.get("metrics"), sort_keys=True) == json.dumps(metrics, sort_keys=True):
                return old
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass
    summary = {
        "run_id": run_id,
        "locator_id": out.name,
        "locator": name,
        "display": display,
        "spec": ident,
        "finished_at": now_iso(),
        "metrics": metrics,
    }
    atomic_write_text(path, json.dumps(summary, indent=2))
    return summary


def refresh_summaries(run: RunDir) -> int:
    """After a regrade in place: every finished locator's metrics again (right-for-wrong-reasons depends on
    the grades).  Returns how many summaries it rewrote."""
    samples = run.read_samples()
    changed = 0
    for st in finished_steps(run.path):
        s = st.summary
        new = _write_summary(st.path, s["run_id"], s["locator"], s.get("display", s["locator"]), s["spec"], samples)
        changed += new.get("finished_at") != s.get("finished_at")  # kept when the metrics did not move
    return changed


def _row(sample: dict[str, Any], v: StepVerdicts, spec: LocatorSpec) -> dict[str, Any]:
    return {
        "problem_id": sample["problem_id"],
        "sample_idx": int(sample["sample_idx"]),
        "n_steps": len(v.verdicts),
        "verdicts": v.verdicts,
        "first_wrong": v.first_wrong,
        "outcome": v.outcome,
        "evidence": v.evidence,
        "spent": v.spent,
        "locator": spec.name,
    }


def _dedup(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, int]] = set()
    out = []
    for r in rows:
        k = (r["problem_id"], int(r["sample_idx"]))
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


@dataclass
class StoredSteps:
    """A run's finished verdicts by one locator, as found on disk (what ingest and the views read)."""

    path: Path
    summary: dict[str, Any]

    def rows(self) -> list[dict[str, Any]]:
        return _dedup(read_log(self.path / VERDICTS_JSONL))


def finished_steps(run_path: Path) -> list[StoredSteps]:
    """Every locator's finished verdicts of a run (a summary.json present), best-preferred first; unreadable
    summaries are skipped (ingest warns about them)."""
    found = []
    for d in sorted((Path(run_path) / STEPS_DIR).glob(f"*/{SUMMARY_JSON}")):
        try:
            summary = json.loads(d.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(summary, dict) and isinstance(summary.get("metrics"), dict):
            found.append(StoredSteps(d.parent, summary))
    rank = {n: i for i, n in enumerate(PREFERENCE)}
    return sorted(found, key=lambda s: (rank.get(s.summary.get("locator"), 99), s.path.name))
