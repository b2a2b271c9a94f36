"""Stage 1, collect: k solutions per training problem from the policy, step-format prompt, graded.

This is an ordinary ``eval`` run on the training split (content-addressed under ``OUT/collect/``), so it resumes
after a kill like any run, and its samples can be browsed in the app like any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stepdpo_bench.evaluate import EvalRequest, evaluate
from stepdpo_bench.runs import atomic_write_text

from .context import Pipeline


def collect(pipe: Pipeline) -> dict[str, Any]:
    c = pipe.cfg
    req = EvalRequest(
        model=c.model,
        task=c.task,
        data_dir=Path(c.data_dir) if c.data_dir else None,
        split=c.split,
        limit=c.limit,
        prompt=pipe.prompt_name,
        sampling=pipe.sampling(c.k),
        out_dir=pipe.dir / "collect",
        method="pipeline",
        label=f"{Path(c.model.rstrip('/')).name} (collect)",
        task_seed=c.task_seed,
        question_field=c.question_field,
        answer_field=c.answer_field,
        convention=c.convention,
    )
    res = evaluate(req, pipe.policy, pipe.console)
    atomic_write_text(pipe.dir / "collect.json", json.dumps({"run_id": res.run_dir.run_id}, indent=1))
    pipe._solutions = None  # the run may have grown: read it afresh
    sols = pipe.solutions()
    wrong = pipe.wrong_solutions()
    return {
        "problems": len({s.problem_id for s in sols}),
        "solutions": len(sols),
        "correct": sum(s.correct for s in sols),
        "wrong (with an answer)": len(wrong),
        "no answer": sum(1 for s in sols if not s.correct and s.pred is None),
        "problems with a wrong solution": len({s.problem_id for s in wrong}),
    }
