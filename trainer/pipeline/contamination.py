"""Contamination guard: drop training pairs whose problem overlaps an evaluation set.

Users mine MATH train and test on MATH test; MATH train holds near-copies of test problems.  A pair is dropped
when its problem, normalised (lower case, punctuation and LaTeX spacing folded), equals an evaluation problem,
or shares a word n-gram (13 by default, the GPT-3 paper's decontamination length) with one; problems shorter
than n words are compared exactly only.
"""

from __future__ import annotations

from pathlib import Path

from stepdpo_bench.overlap import OverlapIndex
from stepdpo_bench.tasks import TaskError, load_task

from .config import PipelineError

# which evaluation sets guard which training task by default
DEFAULT_GUARD = {"arith": ["arith"], "gsm8k": ["gsm8k"], "math": ["math", "math500"]}


def guard_tasks(task: str, configured: list[str] | None) -> list[str]:
    if configured is not None:
        return configured
    return DEFAULT_GUARD.get(task, ["gsm8k", "math", "math500"])


def build_index(tasks: list[str], data_dir: str | None, n: int, task_seed: int = 0) -> tuple[OverlapIndex, list[str]]:
    """Index the evaluation sets; returns it and warnings for sets that could not be loaded (named, not fatal
    unless every one failed)."""
    index, warnings = OverlapIndex(n), []
    for name in tasks:
        try:
            t = load_task(name, Path(data_dir) if data_dir else None, "test", seed=task_seed)
        except TaskError as exc:
            warnings.append(f"contamination guard: skipped {name} ({exc})")
            continue
        for p in t.problems:
            index.add(p.id, p.question)
    if tasks and len(warnings) == len(tasks):
        raise PipelineError(
            f"contamination guard could not load any of {', '.join(tasks)}: pass data_dir "
            "(e.g. ../shared/data) or set `contamination: []` to build unguarded"
        )
    return index, warnings
