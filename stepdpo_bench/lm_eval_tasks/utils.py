"""lm-evaluation-harness glue for our tasks: the same problems, prompts and grader as ``stepdpo-bench eval``.

Used from the task YAMLs beside this file (``lm_eval --include_path $(stepdpo-bench lm-eval-tasks)``).  Options
come through lm-eval's ``--metadata`` JSON: ``data_dir`` (local files laid out like shared/data; default the
Hub), ``prompt`` (a template name, default per task), ``path``/``question_field``/``answer_field``/``convention``
for ``stepdpo_jsonl``.  The rendered prompt is stored in each doc, so lm-eval sends exactly our prompt, and
``process_results`` scores with our grader, so the two tools agree on every generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stepdpo_bench.grading import grade
from stepdpo_bench.prompts import default_prompt, get_template, render
from stepdpo_bench.tasks import load_task


def _dataset(name: str, **meta: Any) -> Any:
    import datasets

    data_dir = meta.get("data_dir")
    task = load_task(
        name,
        Path(data_dir) if data_dir else None,
        meta.get("split", "test"),
        question_field=meta.get("question_field", "question"),
        answer_field=meta.get("answer_field", "answer"),
        convention=meta.get("convention", "math"),
    )
    if meta.get("limit"):
        task = task.filtered(int(meta["limit"]))
    template = get_template(meta.get("prompt") or default_prompt(task.convention))
    if template.chat:
        raise ValueError("chat templates need the model's tokenizer; use lm-eval's --apply_chat_template instead")
    rows = [
        {
            "id": p.id,
            "question": p.question,
            "gold": p.gold,
            "subject": p.subject or "",
            "level": p.level or "",
            "prompt": render(template, p),
            "convention": task.convention,
            "task": task.name,
            "data_sha256": task.data_sha256,
            "template": template.name,
        }
        for p in task.problems
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def load_gsm8k(**meta: Any) -> Any:
    return _dataset("gsm8k", **meta)


def load_math(**meta: Any) -> Any:
    return _dataset("math", **meta)


def load_math500(**meta: Any) -> Any:
    return _dataset("math500", **meta)


def load_odyssey(**meta: Any) -> Any:
    return _dataset("odyssey", **meta)


def load_arith(**meta: Any) -> Any:
    return _dataset("arith", **meta)


def load_jsonl(**meta: Any) -> Any:
    if not meta.get("path"):
        raise ValueError('stepdpo_jsonl needs --metadata \'{"path": "your.jsonl"}\'')
    return _dataset(f"jsonl:{meta['path']}", **meta)


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Our grader as lm-eval's metric: extraction + robust equivalence under the task's convention."""
    return {
        "acc": 1.0 if grade(results[0], doc["gold"], doc["convention"], question=doc.get("question")).correct else 0.0
    }


def load_aime24(**meta: Any) -> Any:
    return _dataset("aime24", **meta)


def load_aime25(**meta: Any) -> Any:
    return _dataset("aime25", **meta)


def load_amc23(**meta: Any) -> Any:
    return _dataset("amc23", **meta)


def load_minerva_math(**meta: Any) -> Any:
    return _dataset("minerva_math", **meta)


def load_olympiadbench(**meta: Any) -> Any:
    return _dataset("olympiadbench", **meta)


def load_college_math(**meta: Any) -> Any:
    return _dataset("college_math", **meta)
