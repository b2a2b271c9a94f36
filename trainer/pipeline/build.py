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
from stepdpo_bench.steps import split_steps

from .contamination import build_index, guard_tasks
from .context import Pipeline, initial_text
from .rectify import rectified

STEP_PAIRS = "step_dpo_pairs.jsonl"
DPO_PAIRS = "dpo_pairs.jsonl"
CONTAMINATED = "contaminated.jsonl"


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _located_rows(pipe: Pipeline) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Step-DPO pairs from located, rectified errors, and DPO pairs (whole solutions) for the same errors."""
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
    return step_rows, dpo_rows


def _controlled_rows(pipe: Pipeline) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SCDPO pairs from each controlled error and the correct solution it was made from.

    - Step-DPO rows: the shared steps before the first difference as ``initial_reason_steps``, the correct and the
      corrupted step there as ``chosen`` / ``rejected``.
    - DPO rows, SCDPO as the paper trains it: the steps before the controlled step ``k`` as
      ``initial_reason_steps`` and the two whole continuations from it (to the answer) as ``chosen`` /
      ``rejected``.  Whole-solution DPO on the two solutions gives the same loss, since the shared prefix's
      log-probs cancel in the margin.
    Provenance: ``control_step`` (k), ``error_step`` (the first differing step, 0-based), ``temperature``.
    """
    from .control import controlled_errors

    c = pipe.cfg
    sols = {s.key: s for s in pipe.solutions()}
    step_rows: list[dict[str, Any]] = []
    dpo_rows: list[dict[str, Any]] = []
    for x in controlled_errors(pipe):
        sol, prob = sols.get(x["solution"]), pipe.problems.get(x["problem_id"])
        if sol is None or prob is None:
            continue
        d, k, bad = x["found"]["error_step"], x["control_step"], x["found"]["steps"]
        common = {
            "dataset": pipe.task.name,
            "prompt": prob.question,
            "answer": prob.gold,
            "problem_id": prob.id,
            "sample_idx": sol.sample_idx,
            "mining": "step-controlled",
            "control_step": k,
            "error_step": d,
            "temperature": x["temperature"],
            "policy": c.model,
        }
        step_rows.append(
            {
                "initial_reason_steps": initial_text(sol.steps[:d]),
                "chosen": sol.steps[d],
                "rejected": bad[d],
                "full_chosen": "\n".join(sol.steps[d:]),
                "full_rejected": "\n".join(bad[d:]),
                **common,
                "step_index": d,
            }
        )
        dpo_rows.append(
            {
                "initial_reason_steps": initial_text(sol.steps[:k]),
                "chosen": "\n".join(sol.steps[k:]),
                "rejected": "\n".join(bad[k:]),
                **common,
                "chosen_source": "collected",
            }
        )
    return step_rows, dpo_rows


def build(pipe: Pipeline) -> dict[str, Any]:
    c = pipe.cfg
    step_rows, dpo_rows = _controlled_rows(pipe) if c.mining == "step-controlled" else _located_rows(pipe)
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
    counts: dict[str, Any] = {
        "step-dpo pairs": len(kept_s),
        "dpo pairs": len(kept_d),
        "problems with pairs": len({r["problem_id"] for r in kept_s}),
        "problems dropped (contamination)": len(dropped),
        "dpo chosen from the policy's own correct solutions": sum(r["chosen_source"] == "collected" for r in kept_d),
    }
    if c.mining == "step-controlled" and pipe.task.name == "arith" and kept_s:
        counts["purity (arith: first wrong step = error_step)"] = f"{100 * purity(pipe, kept_s):.1f}%"
    return counts


def purity(pipe: Pipeline, rows: list[dict[str, Any]]) -> float:
    """Share of Step-DPO rows whose rejected solution's true first wrong step (arith's generator truth) is the
    row's ``step_index``: that the rejected step is the error, and the steps before it are right."""
    from stepdpo_bench.tasks.arith import first_wrong_step

    hits = 0
    for r in rows:
        steps = split_steps(r["initial_reason_steps"] + r["full_rejected"])
        hits += first_wrong_step(pipe.problems[r["problem_id"]], steps) == r["step_index"]
    return hits / len(rows)
