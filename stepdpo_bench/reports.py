"""Terminal tables of finished runs, shared by ``eval``, ``regrade`` and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from .leaderboard import extraction_summary, subset_note


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal; ``-`` when missing."""
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def with_ci(block: dict[str, Any] | None) -> str:
    """``37.5 [24.9–50.1]``: an estimate with its interval, in points; ``-`` when the run has no such metric."""
    if not block or block.get("value") is None:
        return "-"
    lo, hi = block.get("ci95") or [None, None]
    return f"{pct(block['value'])} [{pct(lo)}–{pct(hi)}]"


def results_table(results: Sequence[Any], title: str = "Results") -> Table:
    """One row per run: problems and samples per problem, accuracy with its 95% CI, pass@k/maj@k at the largest k
    when sampled, invalid and truncated shares, mean output tokens, how answers were found."""
    asked = list(dict.fromkeys(name for r in results for name in r.manifest.metrics.get("requested") or []))
    ks = sorted({int(k) for r in results for k in (r.manifest.metrics.get("pass@k") or {})})
    k = ks[-1] if ks and not asked else None
    think = any(r.manifest.metrics.get("thinking") for r in results)  # a reasoning model's runs: how it thought
    cols = [
        "task",
        "model",
        "problems",
        "samples/problem",
        "acc %",
        "95% CI %",
        *([f"pass@{k} %", f"maj@{k} %"] if k else []),
        *(f"{name} % [95% CI]" for name in asked),
        "invalid %",
        "truncated %",
        "mean tokens",
        *(["thinking tokens", "cut in thinking %", "acc untruncated %"] if think else []),
        "answers found by",
        "run",
    ]
    table = Table(title=title)
    for col in cols:
        table.add_column(col, justify="left" if col in ("task", "model", "answers found by", "run") else "right")
    for r in results:
        m = r.manifest
        met = m.metrics
        lo, hi = met.get("ci95") or [None, None]
        row = [
            m.task.name + (f" ({subset_note(m.task.filters)})" if m.task.subset else ""),
            m.model.display,
            str(met.get("n_problems")),
            str(m.sampling.n),
            pct(met.get("accuracy")),
            f"{pct(lo)}–{pct(hi)}",
        ]
        if k:
            row += [pct((met.get("pass@k") or {}).get(str(k))), pct((met.get("maj@k") or {}).get(str(k)))]
        row += [with_ci((met.get("at_k") or {}).get(name)) for name in asked]
        row += [
            pct(met.get("invalid_rate")),
            pct(met.get("truncation_rate")),
            f"{met.get('mean_tokens') or 0:.0f}",
        ]
        if think:
            th = met.get("thinking") or {}
            tokens = th.get("mean_reasoning_tokens")
            row += [
                "-" if tokens is None else f"{tokens:.0f}",
                pct(th.get("truncated_in_thinking")),
                pct(th.get("accuracy_untruncated")),
            ]
        row += [
            extraction_summary(met.get("extraction"), top=2),
            r.status,
        ]
        table.add_row(*(Text(str(c)) for c in row))  # user text is text, never markup (a label 'x[/]')
    return table


def plan_table(plans: Sequence[Any]) -> Table:
    """``eval --dry-run``: per task, what would be scored and where, and whether the run is new, resumed or
    reused, all known before any model loads."""
    table = Table(title="Plan (nothing generated)")
    for col in ("task", "problems", "samples/problem", "prompt", "run", "state"):
        table.add_column(col, justify="right" if col in ("problems", "samples/problem") else "left")
    for p in plans:
        m = p.run.manifest()
        if m is not None and m.done:
            state = "finished: reused"
        elif p.run.path.exists():
            have = len({(s["problem_id"], s["sample_idx"]) for s in p.run.read_samples()})
            state = f"resume: {have} of {len(p.task) * p.params.n} samples done"
        else:
            state = "new"
        sub = subset_note(p.req.filters)
        row = [
            p.task.name + (f" ({sub})" if sub else ""),
            str(len(p.task)),
            str(p.params.n),
            p.template.name,
            str(p.run.path),
            state,
        ]
        table.add_row(*(Text(c) for c in row))
    return table


def steps_table(results: Sequence[Any], title: str = "Step verdicts") -> Table:
    """One row per (run, locator): step accuracy, right-for-wrong-reasons, wrong answers with no wrong step,
    where solutions first go wrong, and how much the locator could check, each share with its 95% interval."""
    from .step_metrics import LABELS

    cols = ["run", "locator", "solutions", "checked"] + [
        LABELS[k]
        for k in ("step_accuracy", "right_for_wrong_reasons", "wrong_steps_all_correct", "checkable")
    ] + ["first error at step", "first error (share)"]  # fmt: skip
    table = Table(title=title + " (% with 95% CI; first error: mean over solutions with a wrong step)")
    for c in cols:
        table.add_column(c, justify="left" if c in ("run", "locator") else "right")
    for r in results:
        met = r.summary["metrics"]
        fe = met.get("first_error_step") or {}
        lo, hi = fe.get("ci95") or [None, None]
        first = "-" if fe.get("value") is None else f"{fe['value']:.2f}"
        if fe.get("value") is not None and lo is not None:
            first += f" [{lo:.2f}–{hi:.2f}]"
        counts = met.get("counts") or {}
        table.add_row(
            Text(r.run.run_id),
            Text(r.summary.get("display") or r.spec.name),
            str(counts.get("solutions", 0)),
            str(counts.get("checked_solutions", 0)),
            with_ci(met.get("step_accuracy")),
            with_ci(met.get("right_for_wrong_reasons")),
            with_ci(met.get("wrong_steps_all_correct")),
            with_ci(met.get("checkable")),
            first,
            with_ci(met.get("first_error_relative")),
        )
    return table
