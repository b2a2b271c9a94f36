"""Task registry: ``load_task("math500", data_dir=...)``.

Each task reads either local files laid out like ``../shared/data`` (``--data-dir``, or the ``STEPDPO_DATA_DIR``
environment variable that every entry point honours) or, by default, the Hugging Face Hub through ``datasets``:

| task      | local file (under --data-dir)                         | Hub default                               |
|-----------|-------------------------------------------------------|-------------------------------------------|
| gsm8k     | gsm8k/test.jsonl (question, answer "... #### N")      | openai/gsm8k, config main, split test     |
| math      | math/test.jsonl (problem, solution, type, level, idx) | EleutherAI/hendrycks_math, 7 subject configs |
| math500   | math500/test.jsonl (problem, answer, subject, level)  | HuggingFaceH4/MATH-500, split test        |
| odyssey   | odyssey_math/final-odyssey-math-with-levels.jsonl     | none: distributed on GitHub, use --data-dir |
| aime24    | aime24/test.jsonl (problem, answer, url)              | HuggingFaceH4/aime_2024 (split train)     |
| aime25    | aime25/test.jsonl (problem, answer; escapes repaired) | opencompass/AIME2025 (AIME2025-I, -II)    |
| amc23     | amc23/test.jsonl (problem, answer float, url)         | math-ai/amc23                             |
| minerva_math | minerva_math/test.jsonl (problem, solution, type)  | math-ai/minervamath (question, answer)    |
| olympiadbench | olympiadbench/test.jsonl (final_answer, unit)     | Hothan/OlympiadBench, OE_TO_maths_en_COMP |
| college_math | college_math/test.jsonl (question, answer, topic)  | none: from Qwen2.5-Math's GitHub data     |
| arith     | generated from a seed (train/test)                    | none needed                               |

``reasoning`` names the suite: the six sets above plus math500, in the order papers print them.
| jsonl:PATH| a user's file; fields --question-field/--answer-field | -                                         |
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..grading import extract_gold
from . import arith, reasoning
from .base import Problem, Task, TaskError, read_jsonl, require, sha256_file, sha256_records

__all__ = ["REASONING_SETS", "SUITES", "TASK_NAMES", "Problem", "Task", "TaskError", "expand_tasks", "load_task"]

DATA_ENV = "STEPDPO_DATA_DIR"  # local data for every entry point (eval, check, watch, pairs, lm-eval tasks)
REASONING_SETS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "college_math")
SUITES = {"reasoning": REASONING_SETS}
TASK_NAMES = (
    "gsm8k",
    "math",
    "math500",
    "odyssey",
    "aime24",
    "aime25",
    "amc23",
    "minerva_math",
    "olympiadbench",
    "college_math",
    "arith",
    "jsonl:PATH",
)

LOCAL_FILES = {
    "gsm8k": {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"},
    "math": {"test": "math/test.jsonl", "train": "math/train.jsonl"},
    "math500": {"test": "math500/test.jsonl"},
    "odyssey": {"test": "odyssey_math/final-odyssey-math-with-levels.jsonl"},
    **{name: {"test": f"{name}/test.jsonl"} for name in REASONING_SETS if name != "math500"},
}
MATH_SUBJECT_CONFIGS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
HUB = {
    "gsm8k": ("openai/gsm8k", "main"),
    "math": ("EleutherAI/hendrycks_math", MATH_SUBJECT_CONFIGS),
    "math500": ("HuggingFaceH4/MATH-500", None),
    # the suite's sets as lighteval and the RL recipes load them; the Hub split each is published as
    "aime24": ("HuggingFaceH4/aime_2024", None, "train"),
    "aime25": ("opencompass/AIME2025", ("AIME2025-I", "AIME2025-II"), "test"),
    "amc23": ("math-ai/amc23", None, "test"),
    "minerva_math": ("math-ai/minervamath", None, "test"),
    "olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
}
GITHUB = {  # where the sets without a Hub copy are published
    "odyssey": "github.com/protagolabs/odyssey-math",
    "college_math": "github.com/QwenLM/Qwen2.5-Math, evaluation/data/college_math/test.jsonl",
}
TAG_CONFIG = ("aime25",)  # Hub configs that carry a breakdown (AIME I / II): each record keeps its config


class NoGold(TaskError):
    """A published record without a gold answer (MATH train has two empty ``\\boxed{}``): skipped, not fatal."""


def _level(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s.removeprefix("Level ").strip() or None


def _gsm8k(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    answer = require(rec, "answer", where)
    if isinstance(answer, list) or "####" not in str(answer):
        raise TaskError(f"{where}: field 'answer' has no '#### N' gold")
    return Problem(
        f"gsm8k/{split}/{i}", require(rec, "question", where, str), extract_gold(answer, "gsm8k"), reference=str(answer)
    )


def _math(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    solution = require(rec, "solution", where)
    gold = rec.get("answer") or extract_gold(solution, "math")
    if not gold:
        raise NoGold(f"{where}: no gold answer (no 'answer' field and no \\boxed{{}} in 'solution')")
    pid = rec.get("unique_id") or f"math/{split}/{rec.get('idx', i)}"
    return Problem(
        str(pid),
        require(rec, "problem", where, str),
        gold,
        subject=rec.get("type") or rec.get("subject"),
        level=_level(rec.get("level")),
        reference=solution,
    )


def _odyssey(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    if len(rec) == 1 and isinstance(next(iter(rec.values())), dict):  # {"Problem_N": {...}}
        key, inner = next(iter(rec.items()))
    else:
        key, inner = f"Problem_{i + 1}", rec
    question = require(inner, "question", where, str)
    question = question.split("\\end{problem}")[0].strip()
    return Problem(
        f"odyssey/{key}",
        question,
        extract_gold(require(inner, "answer", where), "odyssey"),
        subject=inner.get("label"),
        level=inner.get("level"),
        reference=inner.get("reasoning"),
    )


PARSERS = {
    "gsm8k": _gsm8k,
    "math": _math,
    "math500": _math,
    "odyssey": _odyssey,
    "aime24": reasoning.aime("aime24"),
    "aime25": reasoning.aime("aime25"),
    "amc23": reasoning.amc,
    "minerva_math": reasoning.minerva,
    "olympiadbench": reasoning.olympiadbench,
    "college_math": reasoning.college_math,
}
CONVENTIONS = {
    "gsm8k": "gsm8k",
    "math": "math",
    "math500": "math",
    "odyssey": "odyssey",
    "arith": "arith",
    **{name: "math" for name in REASONING_SETS},
}


BUDGET = 2048  # the Step-DPO and Qwen2.5-Math evaluations' budget
REASONING_BUDGET = 32768  # DeepSeek-R1's report and open-r1's lighteval runs of AIME, AMC, ... for reasoning models


def default_budget(tasks: Iterable[str]) -> int:
    """The default --max-tokens of one command: 32768 when it includes a set only the reasoning suite has (the
    suite's table needs one budget for all its columns, so its math500 gets it too), else 2048."""
    suite_only = set(REASONING_SETS) - {"math500"}
    return REASONING_BUDGET if any(t in suite_only for t in tasks) else BUDGET


def expand_tasks(names: Iterable[str]) -> list[str]:
    """``reasoning`` -> its seven sets; other names as given; each once, in order."""
    out: list[str] = []
    for n in names:
        out += SUITES.get(n, (n,))
    return list(dict.fromkeys(out))


def _meta(problems: list[Problem], skipped: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"skipped_no_gold": skipped} if skipped else {}
    repaired = {p.id: list(p.repairs) for p in problems if p.repairs}
    if repaired:
        meta["repaired"] = repaired
    return meta


def _parse_all(name: str, split: str, records: Iterable[tuple[int, dict[str, Any], str]]) -> tuple[list, list]:
    """Problems and the records skipped for having no gold (ids keep their record positions, so they are stable)."""
    parse, problems, skipped = PARSERS[name], [], []
    for i, rec, where in records:
        try:
            problems.append(parse(i, rec, split, where))
        except NoGold:
            skipped.append(where)
    return problems, skipped


def _from_file(name: str, path: Path, split: str) -> Task:
    records = ((i, rec, f"{path}:{lineno}") for i, (lineno, rec) in enumerate(read_jsonl(path)))
    problems, skipped = _parse_all(name, split, records)
    if not problems:
        raise TaskError(f"{path}: no records")
    meta = _meta(problems, skipped)
    return Task(name, CONVENTIONS[name], split, problems, sha256_file(path), str(path), meta)


def _from_hub(name: str, split: str) -> Task:
    if name not in HUB:
        raise TaskError(
            f"task {name!r} has no Hugging Face Hub source; set {DATA_ENV}=DIR (or pass --data-dir DIR) with its files"
            + (f" ({LOCAL_FILES[name]['test']}: {GITHUB[name]})" if name in GITHUB else "")
        )
    try:
        import datasets
    except ImportError:
        raise TaskError("loading from the Hub needs `datasets`: pip install 'stepdpo-bench[hf]'") from None
    repo, configs, *hub_split = HUB[name]
    config_list = configs if isinstance(configs, tuple) else (configs,)
    where_split = hub_split[0] if hub_split and split == "test" else split  # sets published as one "train" split
    records: list[dict[str, Any]] = []
    try:
        for cfg in config_list:
            ds = (
                datasets.load_dataset(repo, cfg, split=where_split)
                if cfg
                else datasets.load_dataset(repo, split=where_split)
            )
            records.extend(dict(r, _config=cfg) if name in TAG_CONFIG else dict(r) for r in ds)
    except Exception as exc:
        raise TaskError(
            f"could not load {repo} ({split}) from the Hub: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}; "
            f"offline? point {DATA_ENV}=DIR (or eval's --data-dir, pairs' data_dir) at local files laid out like "
            "shared/data"
        ) from None
    problems, skipped = _parse_all(name, split, ((i, r, f"{repo}[{i}]") for i, r in enumerate(records)))
    meta = _meta(problems, skipped)
    return Task(name, CONVENTIONS[name], split, problems, sha256_records(records), f"hf://{repo}", meta)


def load_jsonl_task(
    path: Path, question_field: str = "question", answer_field: str = "answer", convention: str = "math"
) -> Task:
    """A user's own JSONL: one problem per line; the answer field holds the gold (or a solution with a box)."""
    problems = []
    for i, (lineno, rec) in enumerate(read_jsonl(path)):
        where = f"{path}:{lineno}"
        q = require(rec, question_field, where, str)
        a = require(rec, answer_field, where, (str, int, float))
        problems.append(
            Problem(
                str(rec.get("id", f"{path.stem}/{i}")),
                q,
                extract_gold(str(a), convention),
                subject=rec.get("subject"),
                level=_level(rec.get("level")),
            )
        )
    if not problems:
        raise TaskError(f"{path}: no records")
    return Task(f"jsonl:{path.name}", convention, "test", problems, sha256_file(path), str(path))


def load_task(
    name: str,
    data_dir: Path | None = None,
    split: str = "test",
    *,
    seed: int = 0,
    question_field: str = "question",
    answer_field: str = "answer",
    convention: str = "math",
) -> Task:
    """Load a task by name.  Raises TaskError (one line, says what to do) on unknown names or bad data."""
    if name.startswith("jsonl:"):
        return load_jsonl_task(Path(name[len("jsonl:") :]).expanduser(), question_field, answer_field, convention)
    if name == "arith":
        return arith.generate(split, seed=seed)
    if name not in PARSERS:
        raise TaskError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    if data_dir is None and os.environ.get(DATA_ENV):
        data_dir = Path(os.environ[DATA_ENV]).expanduser()
    if data_dir is not None:
        rel = LOCAL_FILES[name].get(split)
        if rel is None:
            raise TaskError(f"task {name!r} has no {split!r} split locally (have: {', '.join(LOCAL_FILES[name])})")
        path = Path(data_dir) / rel
        if not path.is_file():
            raise TaskError(
                f"{path}: not found; the data folder (--data-dir or {DATA_ENV}) must be laid out like "
                f"shared/data ({rel})"
            )
        return _from_file(name, path, split)
    return _from_hub(name, split)
