"""``arith``: synthetic multi-step arithmetic word problems with exact ground-truth steps.

The embedded default task: generated from a seed (no download), small enough for a tiny CPU model, and every
step's truth is known, so step locators can be scored exactly.  Train and test come from disjoint seed streams
and the train split drops any question that also occurs in test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .base import Problem, Task, sha256_records

NAMES = ("Ava", "Ben", "Cleo", "Dan", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade")
ITEMS = ("apples", "books", "coins", "pens", "cards", "shells", "stamps", "marbles")
SPLIT_SEEDS = {"test": 1_000_003, "train": 2_000_029}
DEFAULT_SIZES = {"test": 500, "train": 5000}


@dataclass(frozen=True)
class ArithConfig:
    """Difficulty knobs: number of steps and operand range.  Part of the data checksum."""

    min_steps: int = 2
    max_steps: int = 3
    max_operand: int = 20
    ops: str = "+-*"


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
    exclude: set[str] = set()
    if split == "train":
        exclude = {p.question for p in generate("test", DEFAULT_SIZES["test"], seed, cfg).problems}
    rng = random.Random(SPLIT_SEEDS[split] + 7919 * seed)
    problems: list[Problem] = []
    seen: set[str] = set()
    attempts = 0
    while len(problems) < n and attempts < 50 * max(n, 1):
        attempts += 1
        question, steps, answer = _problem(rng, cfg)
        if question in seen or question in exclude:
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
