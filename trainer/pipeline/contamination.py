"""Contamination guard: drop training pairs whose problem overlaps an evaluation set.

Users mine MATH train and test on MATH test; MATH train holds near-copies of test problems.  A pair is dropped
when its problem, normalised (lower case, punctuation and LaTeX spacing folded), equals an evaluation problem,
or shares a word n-gram (13 by default, the GPT-3 paper's decontamination length) with one; problems shorter
than n words are compared exactly only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stepdpo_bench.tasks import TaskError, load_task

from .config import PipelineError

# which evaluation sets guard which training task by default
DEFAULT_GUARD = {"arith": ["arith"], "gsm8k": ["gsm8k"], "math": ["math", "math500"]}
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\\!", "").replace("\\,", ""))


@dataclass
class EvalIndex:
    n: int
    exact: dict[str, str] = field(default_factory=dict)  # normalised text -> eval problem id
    grams: dict[int, str] = field(default_factory=dict)  # hash of an n-gram -> eval problem id

    def add(self, pid: str, text: str) -> None:
        w = _words(text)
        self.exact.setdefault(" ".join(w), pid)
        for i in range(len(w) - self.n + 1):
            self.grams.setdefault(hash(tuple(w[i : i + self.n])), pid)

    def match(self, text: str) -> str | None:
        """Why ``text`` is contaminated (``exact:<id>`` / ``13-gram:<id>``), or None."""
        w = _words(text)
        if (pid := self.exact.get(" ".join(w))) is not None:
            return f"exact:{pid}"
        for i in range(len(w) - self.n + 1):
            if (pid := self.grams.get(hash(tuple(w[i : i + self.n])))) is not None:
                return f"{self.n}-gram:{pid}"
        return None


def guard_tasks(task: str, configured: list[str] | None) -> list[str]:
    if configured is not None:
        return configured
    return DEFAULT_GUARD.get(task, ["gsm8k", "math", "math500"])


def build_index(tasks: list[str], data_dir: str | None, n: int, task_seed: int = 0) -> tuple[EvalIndex, list[str]]:
    """Index the evaluation sets; returns it and warnings for sets that could not be loaded (named, not fatal
    unless every one failed)."""
    index, warnings = EvalIndex(n), []
    for name in tasks:
        try:
            t = load_task(name, Path(data_dir) if data_dir else None, "test", seed=task_seed)
        except TaskError as exc:
            warnings.append(f"contamination guard: skipped {name} ({exc})")
            continue
        for p in t.problems:
            index.add(p.id, p.question)
    if tasks and len(warnings) == len(tasks):
        raise PipelineError(f"contamination guard could not load any of {', '.join(tasks)}: pass data_dir "
                            "(e.g. ../shared/data) or set `contamination: []` to build unguarded")  # fmt: skip
    return index, warnings
