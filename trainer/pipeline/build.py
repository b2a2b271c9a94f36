"""Stage 4, pairs: Step-DPO pairs in the public ``xinlai/Math-Step-DPO-10K`` format, and DPO pairs on the same
problems, after the contamination guard.

- ``step_dpo_pairs.jsonl``: ``dataset``, ``prompt`` (the problem), ``initial_reason_steps``, ``chosen`` and
  ``rejected`` (one step each), ``full_chosen`` and ``full_rejected`` (the continuations that begin with
  ``chosen`` / ``rejected``, as in the public rows: ``initial_reason_steps`` + ``full_chosen`` is the whole
  correct solution), ``answer``; plus provenance: ``problem_id``,
  ``sample_idx``, ``step_index`` (0-based), ``locator``, ``confidence``, ``policy``.
- ``dpo_pairs.jsonl``: response-level pairs for the same errors: a full correct solution of the same problem
  (the policy's own from collect when it has one, else the rectified one) vs the full wrong solution, with
  empty ``initial_reason_steps``; so DPO and Step-DPO train on the same problems and the same mistakes.
- ``contaminated.jsonl``: what the guard dropped and why.

Files are rewritten whole (atomically) from the earlier stages' logs: building is cheap and deterministic.
"""

from __future__ import annotations

import json
from typing import Any

from stepdpo_bench.runs import atomic_write_text

from .contamination import build_index, guard_tasks
from .context import Pipeline, initial_text
from .rectify import rectified

STEP_PAIRS = "step_dpo_pairs.jsonl"
DPO_PAIRS = "dpo_pairs.jsonl"
CONTAMINATED = "contaminated.jsonl"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def build(pipe: Pipeline) -> dict[str, Any]:
    c = pipe.cfg
    sols = pipe.solutions()
    by_key = {s.key: s for s in sols}
    correct_by_problem: dict[str, list[str]] = {}
    for s in sols:
        if s.correct:
            correct_by_problem.setdefault(s.problem_id, []).append("\n".join(s.steps))
    step_rows: list[dict[str, Any]] = []
    dpo_rows: list[dict[str, Any]] = []
    for key, r in sorted(rectified(pipe).items()):
        sol, prob = by_key.get(key), pipe.problems.get(r["problem_id"])
        if sol is None or prob is None or not r["chosen"]:
            continue
        before = initial_text(sol.steps[: r["step"]])
        # Math-Step-DPO-10K's meaning: full_chosen / full_rejected are the continuations from the diverging step
        # (initial_reason_steps + full_* is the whole solution); DPO rows below take whole solutions.
        whole_rejected = "\n".join(sol.steps)
        full_rejected = "\n".join(sol.steps[r["step"] :])
        for ch in r["chosen"][: c.pairs_per_error]:
            step_rows.append(
                {
                    "dataset": pipe.task.name,
                    "prompt": prob.question,
                    "initial_reason_steps": before,
                    "chosen": ch["step"],
                    "rejected": r["rejected"],
                    "full_chosen": ch["full"][len(before) :] if ch["full"].startswith(before) else ch["full"],
                    "full_rejected": full_rejected,
                    "answer": prob.gold,
                    "problem_id": prob.id,
                    "sample_idx": sol.sample_idx,
                    "step_index": r["step"],
                    "locator": r["locator"],
                    "confidence": r["confidence"],
                    "policy": c.model,
                }
            )
            own = correct_by_problem.get(prob.id) or []
            chosen_full = own[len(dpo_rows) % len(own)] if own else ch["full"]
            dpo_rows.append(
                {
                    "dataset": pipe.task.name,
                    "prompt": prob.question,
                    "initial_reason_steps": "",
                    "chosen": chosen_full,
                    "rejected": whole_rejected,
                    "answer": prob.gold,
                    "problem_id": prob.id,
                    "sample_idx": sol.sample_idx,
                    "chosen_source": "collected" if own else "rectified",
                    "policy": c.model,
                }
            )
    guard = guard_tasks(c.task, c.contamination)
    kept_s, kept_d, dropped, warnings = step_rows, dpo_rows, [], []
    if guard:
        index, warnings = build_index(guard, c.data_dir, c.ngram, c.task_seed)
        for w in warnings:
            pipe.console.print(f"[yellow]warning:[/] {w}", highlight=False)
        why = {pid: index.match(pipe.problems[pid].question) for pid in {r["problem_id"] for r in step_rows}}
        kept_s = [r for r in step_rows if not why[r["problem_id"]]]
        kept_d = [r for r in dpo_rows if not why[r["problem_id"]]]
        dropped = [{"problem_id": pid, "reason": w} for pid, w in sorted(why.items()) if w]
        if dropped:
            pipe.console.print(
                f"[yellow]warning:[/] contamination guard dropped {len(dropped)} problems "
                f"overlapping {', '.join(guard)} (see {pipe.dir / CONTAMINATED})"
            )
    atomic_write_text(pipe.dir / STEP_PAIRS, _jsonl(kept_s))
    atomic_write_text(pipe.dir / DPO_PAIRS, _jsonl(kept_d))
    atomic_write_text(pipe.dir / CONTAMINATED, _jsonl(dropped))
    return {
        "step-dpo pairs": len(kept_s),
        "dpo pairs": len(kept_d),
        "problems with pairs": len({r["problem_id"] for r in kept_s}),
        "problems dropped (contamination)": len(dropped),
        "dpo chosen from the policy's own correct solutions": sum(r["chosen_source"] == "collected" for r in kept_d),
    }
