"""Stage 2, locate: the first wrong step of every wrong solution, by each configured locator.

Results go to ``OUT/located.jsonl``, one line per (solution, locator), appended chunk by chunk and fsynced:
a kill loses at most the chunk in flight, and a rerun locates only what is missing (adding a locator to the
config later locates with it alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.progress import Progress

from stepdpo_bench.locators import Location
from stepdpo_bench.locators.symbolic import locate as symbolic_locate
from stepdpo_bench.runs import append_log, read_log

from .context import Pipeline, Solution, aligned_chunks

LOCATED = "located.jsonl"


def _locate_chunk(pipe: Pipeline, locator: str, chunk: Sequence[Solution], judge: Any) -> list[Location]:
    if locator == "symbolic":
        return [symbolic_locate(s.steps) for s in chunk]
    if locator == "rollout":
        from .rollout import rollout_locate

        return rollout_locate(pipe, chunk, pipe.cfg.rollout_m, pipe.cfg.rollout_alpha)
    return judge.locate(chunk)


def located(pipe: Pipeline, locator: str | None = None) -> dict[str, dict[str, Any]]:
    """Saved locations by solution key (for one locator, or the primary one)."""
    want = locator or pipe.cfg.primary_locator
    return {r["key"]: r for r in read_log(pipe.dir / LOCATED) if r["locator"] == want}


def locate(pipe: Pipeline, progress: Progress | None = None) -> dict[str, Any]:
    wrong = pipe.wrong_solutions()
    path = pipe.dir / LOCATED
    done = {(r["key"], r["locator"]) for r in read_log(path)}
    judge = None
    try:
        for name in pipe.cfg.locators:
            mine = wrong if name == pipe.cfg.primary_locator else wrong[: pipe.cfg.compare_limit]
            todo = [s for s in mine if (s.key, name) not in done]
            tid = (
                progress.add_task(f"locate ({name})", total=len(mine), completed=len(mine) - len(todo), rate="")
                if progress
                else None
            )
            if name == "judge" and todo and judge is None:
                from .judge import Judge

                judge = Judge(pipe)
            for chunk in aligned_chunks(mine, pipe.cfg.chunk_size, lambda s, n=name: (s.key, n) in done):
                # the whole chunk, as an uninterrupted run would have sampled it; only what is missing is written
                locs = _locate_chunk(pipe, name, chunk, judge)
                rows = [
                    {
                        "key": s.key,
                        "problem_id": s.problem_id,
                        "sample_idx": s.sample_idx,
                        "n_steps": len(s.steps),
                        **asdict(loc),
                    }
                    for s, loc in zip(chunk, locs, strict=True)
                    if (s.key, name) not in done
                ]
                append_log(path, rows)
                if progress and tid is not None:
                    progress.update(tid, advance=len(rows))
    finally:
        if judge is not None:
            judge.close()
    counts: dict[str, Any] = {}
    keys = {s.key for s in wrong}
    for name in pipe.cfg.locators:
        rows = [r for r in located(pipe, name).values() if r["key"] in keys]
        by = Counter(r["outcome"] for r in rows)
        counts[f"{name}: located"] = by.get("located", 0)
        for outcome in ("none", "unclear", "unparseable", "invalid"):
            if by.get(outcome):
                counts[f"{name}: {outcome}"] = by[outcome]
        if name != "symbolic":
            counts[f"{name}: samples spent"] = sum(r.get("spent", 0) for r in rows)
    return counts
