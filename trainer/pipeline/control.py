"""Stage 2 of step-controlled mining (SCDPO, Lu et al. 2024, arXiv 2407.00782): negatives whose error starts at a
known step, made without a locator or a judge.

From a correct solution of the policy, pick a step ``k`` (``control_steps``: one uniformly per solution, or every
step), keep the steps before it, and sample continuations at a raised temperature until one reaches a wrong final
answer.  Temperatures are tried in ``control_temperatures`` order (lowest first: the most natural error that
temperature can make), ``control_tries`` continuations each; the first continuation with a wrong answer is kept.
Its first step that differs from the correct solution is ``error_step`` (``k`` or later: a continuation may repeat
the correct steps for a while before it goes wrong).

``OUT/controlled.jsonl`` gets one line per (solution, k, temperature) tried, appended chunk by chunk and fsynced,
so a kill loses at most the chunk in flight and a rerun tries only what is missing, with the same draws.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import Progress

from stepdpo_bench.grading import grade_batch
from stepdpo_bench.locators.symbolic import check_step
from stepdpo_bench.runs import append_log, read_log
from stepdpo_bench.steps import split_steps

from .context import Pipeline, Solution, aligned_chunks
from .rectify import norm_step

CONTROLLED = "controlled.jsonl"


@dataclass(frozen=True)
class Target:
    """One correct solution and the step ``k`` its controlled error should start at."""

    sol: Solution
    k: int

    @property
    def key(self) -> str:
        return f"{self.sol.key}@{self.k}"


def targets(pipe: Pipeline) -> list[Target]:
    """The correct solutions to corrupt (at most ``control_per_problem`` per problem, distinct texts, no checkably
    false arithmetic when ``verify_chosen``) and their steps, in a fixed order: a seeded draw per solution, so
    the same config always picks the same k."""
    c = pipe.cfg
    per_problem: dict[str, list[Solution]] = {}
    for s in pipe.solutions():
        if not s.correct or not s.steps:
            continue
        if c.verify_chosen and any(check_step(x).ok is False for x in s.steps):
            continue  # a lucky answer is no "correct solution" to contrast with
        mine = per_problem.setdefault(s.problem_id, [])
        if len(mine) < c.control_per_problem and all(
            [norm_step(x) for x in m.steps] != [norm_step(x) for x in s.steps] for m in mine
        ):
            mine.append(s)
    out = []
    for sols in per_problem.values():
        for s in sols:
            if c.control_steps == "all":
                out += [Target(s, k) for k in range(len(s.steps))]
            else:
                out.append(Target(s, random.Random(f"{c.seed}:{s.key}").randrange(len(s.steps))))
    return out


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first index where two step lists differ (whitespace-insensitive; a step one list lacks counts as a
    difference), or None when they are the same."""
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or norm_step(a[i]) != norm_step(b[i]):
            return i
    return None


def _control_chunk(pipe: Pipeline, chunk: Sequence[Target], temperature: float, round_: int) -> list[dict[str, Any]]:
    prompts, openings = [], []
    for t in chunk:
        p, o = pipe.prefix_prompt(pipe.problems[t.sol.problem_id], t.sol.steps[: t.k])
        prompts.append(p)
        openings.append(o)
    params = pipe.sampling(pipe.cfg.control_tries, temperature, pipe.cfg.seed + 11 + round_)
    outs = pipe.policy.generate(prompts, params)
    conts = [[o + c.text for c in cs] for o, cs in zip(openings, outs, strict=True)]
    grades = iter(
        grade_batch(
            [x for xs in conts for x in xs],
            [t.sol.gold for t, xs in zip(chunk, conts, strict=True) for _ in xs],
            pipe.task.convention,
        )
    )
    rows = []
    for t, xs in zip(chunk, conts, strict=True):
        found, wrong = None, 0
        for text in xs:
            g = next(grades)
            if g.correct or g.pred is None:
                continue  # still right, or no answer at all (a truncated ramble is not a controlled error)
            steps = t.sol.steps[: t.k] + split_steps(text)
            d = first_difference(t.sol.steps, steps)
            if d is None or d >= len(t.sol.steps) or d >= len(steps):
                continue  # no step of its own to contrast with the correct one
            wrong += 1
            if found is None:
                found = {"error_step": d, "steps": steps, "pred": g.pred}
        rows.append(
            {
                "key": t.key,
                "solution": t.sol.key,
                "problem_id": t.sol.problem_id,
                "sample_idx": t.sol.sample_idx,
                "control_step": t.k,
                "round": round_,
                "temperature": temperature,
                "tried": len(xs),
                "wrong": wrong,
                "found": found,
            }
        )
    return rows


def controlled(pipe: Pipeline) -> dict[tuple[str, int], dict[str, Any]]:
    """Saved attempts by (target key, round)."""
    return {(r["key"], r["round"]): r for r in read_log(pipe.dir / CONTROLLED)}


def control(pipe: Pipeline, progress: Progress | None = None) -> dict[str, Any]:
    items = targets(pipe)
    temps = pipe.cfg.control_temperatures
    done = controlled(pipe)
    tid = progress.add_task("control", total=len(items), completed=0, rate="") if progress else None
    open_ = list(items)  # targets without a controlled error yet, in the fixed order
    for r, temp in enumerate(temps):
        for chunk in aligned_chunks(open_, pipe.cfg.chunk_size, lambda t, r=r: (t.key, r) in done):
            rows = [x for x in _control_chunk(pipe, chunk, temp, r) if (x["key"], r) not in done]
            append_log(pipe.dir / CONTROLLED, rows)
            done.update({(x["key"], r): x for x in rows})
        open_ = [t for t in open_ if not done[(t.key, r)]["found"]]
        if progress and tid is not None:
            progress.update(tid, completed=len(items) - len(open_))
    found = [x for x in done.values() if x["found"]]
    counts: dict[str, Any] = {
        "correct solutions": len({t.sol.key for t in items}),
        "targets (solution, step)": len(items),
        "continuations sampled": sum(x["tried"] for x in done.values()),
        "controlled errors found": len(found),
    }
    for r, temp in enumerate(temps):
        counts[f"found at temperature {temp:g}"] = sum(x["round"] == r for x in found)
    counts["error at the controlled step"] = sum(x["found"]["error_step"] == x["control_step"] for x in found)
    return counts


def controlled_errors(pipe: Pipeline) -> list[dict[str, Any]]:
    """The kept controlled error of each target that has one (its first round with a wrong answer)."""
    keys = {t.key for t in targets(pipe)}
    best: dict[str, dict[str, Any]] = {}
    for (key, _), x in sorted(controlled(pipe).items(), key=lambda kv: kv[0][1]):
        if key in keys and x["found"] and key not in best:
            best[key] = x
    return [best[k] for k in sorted(best)]
