"""``stepdpo-bench demo --smoke``: the demo's whole code path at toy size, then a rerun that resumes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app

pytest.importorskip("accelerate")
runner = CliRunner()


def test_demo_smoke_runs_every_phase_and_resumes(arith_policy, shared_data):
    out = arith_policy.parent  # the session's smoke SFT model is reused, as a rerun of the demo would
    res = runner.invoke(app, ["demo", "--smoke", "--out", str(out), "--data-dir", str(shared_data)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["accuracy"]) == {f"{m}/{t}" for m in ("sft", "dpo", "step-dpo") for t in ("arith", "gsm8k")}
    assert summary["funnel"]["build"]["step-dpo pairs"] > 0
    assert {c["b"] for c in summary["comparisons"]} == {"dpo", "step-dpo"}
    assert set(summary["locators"]) == {"symbolic", "rollout"}
    assert summary["locators"]["symbolic"]["located"] > 0
    for method in ("dpo", "step-dpo"):
        tag = json.loads((out / method / "stepdpo_train.json").read_text())
        assert tag["method"] == method and tag["steps"] == 4 and tag["base_model"] == str(arith_policy)
    assert "Leaderboard" in res.output and "Paired comparisons" in res.output
    assert f"stepdpo-bench app --results {out / 'results'}" in res.output
    assert (out / "results" / "leaderboard.duckdb").is_file()
    # a rerun reuses every phase and reports the same numbers
    again = runner.invoke(app, ["demo", "--smoke", "--out", str(out), "--data-dir", str(shared_data)])
    assert again.exit_code == 0, again.output
    assert "reusing" in again.output
    assert json.loads((out / "summary.json").read_text())["accuracy"] == summary["accuracy"]
