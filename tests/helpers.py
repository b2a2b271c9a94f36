"""Small helpers shared by the harness tests."""

from __future__ import annotations

from pathlib import Path

from stepdpo_bench.runs import RunDir


def runs_by_task(out: Path) -> dict[str, RunDir]:
    """The run directories under ``out``, keyed by task name (from the ``model__task__hash`` directory name)."""
    return {d.name.split("__")[1]: RunDir(d) for d in sorted(out.iterdir()) if (d / "run.json").exists()}


def collected_samples(pipe: Path) -> dict[str, dict]:
    """A pair pipeline's collected solutions by ``problem_id#sample_idx`` (its collect run, read directly)."""
    import json

    run_id = json.loads((pipe / "collect.json").read_text())["run_id"]
    return {f"{s['problem_id']}#{s['sample_idx']}": s for s in RunDir(pipe / "collect" / run_id).read_samples()}


def same_completions(a: dict[str, RunDir], b: dict[str, RunDir]) -> tuple[int, int]:
    """(identical, compared) completions between two sets of runs on the same tasks and prompts."""
    same = total = 0
    for task, run in a.items():
        other = {s["problem_id"]: s for s in b[task].read_samples()}
        for s in run.read_samples():
            assert s["prompt"] == other[s["problem_id"]]["prompt"]
            total += 1
            same += s["completion"] == other[s["problem_id"]]["completion"]
    return same, total


def clone_run(src: Path, results: Path, label: str) -> Path:
    """A copy of run ``src`` under ``results`` as another model's run (new run id, label and model path): a run
    that arrives later, for the tests of readers and writers."""
    import json
    import shutil

    dst = results / f"{label}__clone"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock"))
    m = json.loads((dst / "run.json").read_text())
    m["run_id"] = dst.name
    m["model"].update(label=label, name_or_path=f"/models/{label}")
    m.pop("regraded_from", None)
    (dst / "run.json").write_text(json.dumps(m))
    return dst


def write_last_step_pairs(path: Path, n: int, ids: bool = False) -> Path:
    """Step-DPO pairs on arith train problems: the earlier true steps, then the true last step (chosen) vs the same
    step with its result off by 3 (rejected); ``ids`` adds each problem's id."""
    import json

    from stepdpo_bench.tasks import arith

    rows = []
    for p in arith.generate("train", n).problems:
        *before, last = p.steps
        lhs, rhs = last.split(" = ")
        row = {
            "prompt": p.question,
            "initial_reason_steps": "\n".join(before) + "\n",
            "chosen": last,
            "rejected": f"{lhs} = {int(rhs) + 3}",
        }
        rows.append({**row, "problem_id": p.id} if ids else row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
