"""``arith``: synthetic multi-step arithmetic word problems with exact ground-truth steps.

The embedded default task: generated from a seed (no download), small enough for a tiny CPU model, and every
step's truth is known, so step locators can be scored exactly.  Train and test come from disjoint seed streams
and the train split drops any question that equals a test question or shares a 13-word run with one (the
pipeline's contamination guard would drop those pairs anyway).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..overlap import OverlapIndex
from .base import Problem, Task, sha256_records

NAMES = ("Ava", "Ben", "Cleo", "Dan", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade")
ITEMS = ("apples", "books", "coins", "pens", "cards", "shells", "stamps", "marbles")
SPLIT_SEEDS = {"test": 1_000_003, "train": 2_000_029}
DEFAULT_SIZES = {"test": 500, "train": 5000}


@dataclass(frozen=True)
class ArithConfig:
    """Difficulty knobs: number of steps and operand range.  Part of the data checksum.

    The defaults are tuned for the demo's 0.7M-parameter model: after 700 SFT steps it solves about 30% of test
    problems and its errors are single wrong steps (``8 + 8 = 15``), the material Step-DPO needs (docs/demo.md).
    """

    min_steps: int = 2
    max_steps: int = 3
    max_operand: int = 9
    ops: str = "+-"


def _problem(rng: random.Random, cfg: ArithConfig) -> tuple[str, list[str], int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(2, cfg.max_operand)
    sentences = [f"{name} has {value} {item}."]
    steps: list[str] = []
    for _ in range(rng.randint(cfg.min_steps, cfg.max_steps)):
        op = rng.choice(cfg.ops)
        if op == "-" and value < 2:
            op = "+"
        if op == "*" and value > 10 * cfg.max_operand:
            op = "-"
        if op == "+":
            b = rng.randint(1, cfg.max_operand)
            sentences.append(f"Then {name} gets {b} more {item}.")
            new = value + b
        elif op == "-":
            b = rng.randint(1, min(value - 1, cfg.max_operand))
            sentences.append(f"Then {name} gives away {b} {item}.")
            new = value - b
        else:
            b = rng.randint(2, 4)
            sentences.append(f"Then the number of {item} {name} has is multiplied by {b}.")
            new = value * b
        steps.append(f"{value} {op} {b} = {new}")
        value = new
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), steps, value


def generate(split: str = "test", n: int | None = None, seed: int = 0, cfg: ArithConfig | None = None) -> Task:
    """Generate ``n`` problems of ``split`` (train/test) from ``seed``; identical inputs give identical tasks."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"arith has splits {', '.join(SPLIT_SEEDS)}, not {split!r}")
    cfg = cfg or ArithConfig()
    n = DEFAULT_SIZES[split] if n is None else n
    test_index = OverlapIndex()
    if split == "train":  # no train problem equals, or shares a 13-word run with, a test problem
        for p in generate("test", DEFAULT_SIZES["test"], seed, cfg).problems:
            test_index.add(p.id, p.question)
    rng = random.Random(SPLIT_SEEDS[split] + 7919 * seed)
    problems: list[Problem] = []
    seen: set[str] = set()
    attempts = 0
    while len(problems) < n and attempts < 50 * max(n, 1):
        attempts += 1
        question, steps, answer = _problem(rng, cfg)
        if question in seen or (split == "train" and test_index.match(question)):
            continue
        seen.add(question)
        labelled = tuple(f"Step {k}: {s}" for k, s in enumerate(steps, 1))
        reference = "\n".join(labelled) + f"\nThe answer is: {answer}"
        problems.append(
            Problem(
                id=f"arith/{split}/{len(problems)}",
                question=question,
                gold=str(answer),
                subject=f"{len(steps)}-step",
                level=str(len(steps)),
                reference=reference,
                steps=labelled,
            )
        )
    records = [{"id": p.id, "question": p.question, "gold": p.gold} for p in problems]
    meta = {"seed": seed, "config": cfg.__dict__}
    return Task("arith", "arith", split, problems, sha256_records([meta, *records]), "generated", meta)


_ANSWER = re.compile(r"answer is:?\s*(-?\d+)", re.I)
_STEP_EQ = re.compile(r"(-?\d+)\s*([-+*])\s*(-?\d+)\s*=\s*(-?\d+)")


def first_wrong_step(problem: Problem, steps: list[str]) -> int | None:
    """The exact first wrong step (0-based) of a model's solution to an ``arith`` problem, or None if it has none.

    The solution path is forced (step k applies the k-th sentence's operation to the running value), so a step
    is right iff its equation is the true k-th one.  This catches what arithmetic checking cannot: a true
    equation with the wrong operand (``21 + 6 = 27`` where the question adds 5).  A missing step counts as
    wrong at the last step written (it concluded too early), and so does a final answer the steps do not give.
    """
    truth = [m.groups() for s in problem.steps or () if (m := _STEP_EQ.search(s))]
    for i, step in enumerate(steps):
        m = _STEP_EQ.search(step)
        if i >= len(truth) or m is None or m.groups() != truth[i]:
            return i
    if not steps:
        return None
    if len(steps) < len(truth):
        return len(steps) - 1
    claimed = _ANSWER.search(steps[-1])
    return None if claimed is None or claimed.group(1) == problem.gold else len(steps) - 1
