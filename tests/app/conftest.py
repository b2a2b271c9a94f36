"""Fixture runs for the store and app tests, produced by the real harness on tiny checkpoints.

Two checkpoints (a "DPO" and a "Step-DPO" model on the same base) are evaluated with the hf backend on arith.
Random weights answer (almost) nothing right, so some completions are then rewritten to state the gold answer
(and a lucky guess elsewhere is made wrong) and the
runs are re-scored with the real ``regrade`` path: a controlled perturbation that gives the comparison pages
known fixed/broken sets (A right on problems 0-9, B right on 5-19).  B is first marked as graded by an older
grader, so its regrade lands as a new run (``regraded_from``) and the Audit page has 15 disagreements.  Two
trainer logs in the documented record format feed the Training page.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir, make_run_id

N = 30
A_RIGHT = set(range(0, 10))
B_RIGHT = set(range(5, 20))


def _plant(run: RunDir, right: set[int]) -> None:
    from stepdpo_bench.grading import grade

    rows = run.read_samples()
    for r in rows:
        if int(r["problem_id"].rsplit("/", 1)[1]) not in right and grade(r["completion"], r["gold"], "arith").correct:
            r["completion"] += f"\nThe answer is: {int(r['gold']) + 1}"  # a random model's lucky guess, undone
            r["correct"], r["pred"] = False, str(int(r["gold"]) + 1)
        elif int(r["problem_id"].rsplit("/", 1)[1]) in right:
            r["completion"] = f"Step 1: compute.\nStep 2: so it is {r['gold']}.\nThe answer is: {r['gold']}"
            r["correct"] = False  # as the older grader scored it: the regrade flips exactly these
            r["steps"] = ["Step 1: compute.", f"Step 2: so it is {r['gold']}.\nThe answer is: {r['gold']}"]
    run.compact(rows)


@pytest.fixture(scope="session")
def app_results(tmp_path_factory, tiny_ckpt, shared_data) -> Path:
    from stepdpo_bench.tiny import build_tiny_checkpoint

    from ..conftest import _corpus

    root = tmp_path_factory.mktemp("app")
    other = build_tiny_checkpoint(root / "tiny-b", _corpus(shared_data), seed=1)
    out = root / "results"
    runner = CliRunner()
    for ckpt, method, label in ((tiny_ckpt, "dpo", "tiny-dpo"), (other, "step-dpo", "tiny-step-dpo")):
        res = runner.invoke(
            app,
            [
                "eval",
                "--model",
                str(ckpt),
                "--backend",
                "hf",
                "--tasks",
                "arith",
                "--limit",
                str(N),
                "--max-tokens",
                "24",
                "--method",
                method,
                "--label",
                label,
                "--base-model",
                "tiny-base",
                "--out",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
    runs = {RunDir(d).manifest().model.method: RunDir(d) for d in out.iterdir() if d.is_dir()}
    _plant(runs["dpo"], A_RIGHT)
    _plant(runs["step-dpo"], B_RIGHT)
    b = runs["step-dpo"]
    m = b.manifest()
    m.grader.version = m.identity["grader_version"] = "0.9.0"
    m.run_id = make_run_id(m.identity)
    b.path.rename(out / m.run_id)
    runs["step-dpo"] = RunDir(out / m.run_id)
    runs["step-dpo"].write_manifest(m)
    for run in runs.values():
        res = runner.invoke(app, ["regrade", str(run.path), "--out", str(out)])
        assert res.exit_code == 0, res.output
    # step verdicts by arith's exact truth: the planted right answers ("Step 1: compute.") are right for the
    # wrong reasons, the case the issue found on the demo's Samples page
    res = runner.invoke(app, ["steps", str(out), "--locator", "exact", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for method in ("dpo", "step-dpo"):
        d = out / f"train-{method}"
        d.mkdir()
        (d / "train_config.json").write_text(json.dumps({"method": method, "beta": 0.5}))
        slope = 0.004 if method == "dpo" else 0.006
        lines = [
            {
                "step": s,
                "loss": 0.69 - s * slope,
                "rewards/chosen": 0.01 * s,
                "rewards/rejected": -0.01 * s,
                "rewards/margins": 0.02 * s,
                "rewards/accuracies": min(1, 0.5 + s / 100),
                "lr": 5e-7,
                "tokens_per_s": 1000.0,
            }
            for s in range(1, 41)
        ]
        (d / "train_log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = runner.invoke(app, ["ingest", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="session")
def thinking_results(tmp_path_factory, tiny_thinking_ckpt) -> Path:
    """Two runs of a reasoning model's shape (the template opens <think>) on arith, by the real harness; one
    sample of the first is given a 35,000-character trace cut by the budget, as long traces are."""
    out = tmp_path_factory.mktemp("thinking") / "results"
    runner = CliRunner()
    for method in ("dpo", "step-dpo"):
        args = ["eval", "--model", str(tiny_thinking_ckpt), "--backend", "hf", "--tasks", "arith", "--limit", "4"]
        args += ["--max-tokens", "32", "--prompt", "deepseek-r1", "--method", method, "--label", f"think-{method}"]
        args += ["--base-model", "tiny-base", "--temperature", "0" if method == "dpo" else "0.7", "--out", str(out)]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    run = next(RunDir(d) for d in out.iterdir() if d.is_dir() and RunDir(d).manifest().model.method == "dpo")
    rows = run.read_samples()
    for r in rows:
        if r["problem_id"] == "arith/test/0":
            r["reasoning"] = "LONG-TRACE-START " + "Let me check that again. " * 1400
            r["reasoning_tokens"], r["n_tokens"], r["finish_reason"] = 31000, 31000, "thinking"
            r["completion"], r["steps"] = "", []
            r["pred"], r["correct"] = None, False
    run.compact(rows)
    res = runner.invoke(app, ["ingest", str(out)])
    assert res.exit_code == 0, res.output
    return out
