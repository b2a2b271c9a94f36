"""Stage 3, rectify: from the problem plus the correct steps before the wrong one, sample continuations from the
policy and keep those that reach the gold answer.  Their first step is the *chosen* step; the located wrong
step is *rejected*.

Kept chosen steps are de-duplicated (whitespace-insensitive) and a continuation whose first step restates the
rejected one is dropped.  With ``verify_chosen``, a continuation with any checkably false arithmetic (a lucky one
that reached the answer anyway) is dropped too.  One line per located error in
``OUT/rectified.jsonl``, appended chunk by chunk: resumable like ``locate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.progress import Progress

from stepdpo_bench.grading import grade_batch
from stepdpo_bench.locators.symbolic import check_step
from stepdpo_bench.runs import append_log, read_log
from stepdpo_bench.steps import split_steps

from .context import Pipeline, Solution, aligned_chunks, initial_text
from .locate import located

RECTIFIED = "rectified.jsonl"


def norm_step(s: str) -> str:
    """A step compared whitespace- and case-insensitively (rectify's de-duplication, control's first difference)."""
    return " ".join(s.split()).lower()


def _rectify_chunk(pipe: Pipeline, items: Sequence[tuple[Solution, dict[str, Any]]]) -> list[dict[str, Any]]:
    prompts, openings = [], []
    for sol, loc in items:
        p, o = pipe.prefix_prompt(pipe.problems[sol.problem_id], sol.steps[: loc["step"]])
        prompts.append(p)
        openings.append(o)
    outs = pipe.policy.generate(
        prompts, pipe.sampling(pipe.cfg.rectify_n, pipe.cfg.continuation_temperature, pipe.cfg.seed + 7)
    )
    conts = [[o + c.text for c in cs] for o, cs in zip(openings, outs, strict=True)]
    grades = iter(
        grade_batch(
            [t for ts in conts for t in ts],
            [sol.gold for (sol, _), ts in zip(items, conts, strict=True) for _ in ts],
            pipe.task.convention,
        )
    )
    rows = []
    for (sol, loc), ts in zip(items, conts, strict=True):
        k = loc["step"]
        rejected = sol.steps[k]
        chosen, seen, n_correct, n_unverified = [], {norm_step(rejected)}, 0, 0
        for text in ts:
            if not next(grades).correct:
                continue
            n_correct += 1
            steps = split_steps(text)
            if not steps or norm_step(steps[0]) in seen:
                continue
            if pipe.cfg.verify_chosen and any(check_step(x).ok is False for x in steps):
                n_unverified += 1
                continue
            seen.add(norm_step(steps[0]))
            chosen.append({"step": steps[0], "full": initial_text(sol.steps[:k]) + "\n".join(steps)})
        rows.append(
            {
                "key": sol.key,
                "problem_id": sol.problem_id,
                "sample_idx": sol.sample_idx,
                "step": k,
                "locator": loc["locator"],
                "confidence": loc["confidence"],
                "rejected": rejected,
                "chosen": chosen,
                "tried": len(ts),
                "reached_answer": n_correct,
                "dropped_unverified": n_unverified,
            }
        )
    return rows


def rectified(pipe: Pipeline) -> dict[str, dict[str, Any]]:
    """Saved rectifications of the primary locator's errors, by solution key."""
    return {r["key"]: r for r in read_log(pipe.dir / RECTIFIED) if r["locator"] == pipe.cfg.primary_locator}


def rectify(pipe: Pipeline, progress: Progress | None = None) -> dict[str, Any]:
    locs = located(pipe)
    sols = {s.key: s for s in pipe.wrong_solutions()}
    items = [(sols[k], r) for k, r in locs.items() if r["step"] is not None and k in sols]
    done = rectified(pipe)
    todo = [(s, r) for s, r in items if s.key not in done]
    tid = None
    if progress:
        tid = progress.add_task("rectify", total=len(items), completed=len(items) - len(todo), rate="")
    for chunk in aligned_chunks(items, pipe.cfg.chunk_size, lambda it: it[0].key in done):
        rows = [r for r in _rectify_chunk(pipe, chunk) if r["key"] not in done]  # the chunk as first sampled
        append_log(pipe.dir / RECTIFIED, rows)
        if progress and tid is not None:
            progress.update(tid, advance=len(rows))
    rows = [r for k, r in rectified(pipe).items() if k in locs]
    return {
        f"errors located ({pipe.cfg.primary_locator})": len(items),
        "continuations sampled": sum(r["tried"] for r in rows),
        "continuations reaching the answer": sum(r["reached_answer"] for r in rows),
        "continuations dropped (false arithmetic)": sum(r["dropped_unverified"] for r in rows),
        "errors rectified (>= 1 chosen step)": sum(bool(r["chosen"]) for r in rows),
    }
