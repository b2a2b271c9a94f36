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
    methods = ("dpo", "step-dpo", "scdpo", "sdpo")
    assert set(summary["accuracy"]) == {f"{m}/{t}" for m in ("sft", *methods) for t in ("arith", "gsm8k")}
    assert summary["funnel"]["build"]["step-dpo pairs"] > 0
    assert summary["funnel_controlled"]["build"]["dpo pairs"] > 0  # SCDPO's pairs, from the same collected run
    assert summary["funnel_controlled"]["collect"] == summary["funnel"]["collect"]
    assert {c["b"] for c in summary["comparisons"]} == set(methods)
    assert set(summary["locators"]) == {"symbolic", "rollout"}
    assert summary["locators"]["symbolic"]["located"] > 0
    for method, kind, steps in (("dpo", "dpo", 4), ("step-dpo", "step-dpo", 4), ("scdpo", "dpo", 4)):
        tag = json.loads((out / method / "stepdpo_train.json").read_text())
        assert tag["method"] == kind and tag["steps"] == steps and tag["base_model"] == str(arith_policy)
        assert tag["data"].startswith(str(out / ("pairs-controlled" if method == "scdpo" else "pairs")))
    tag = json.loads((out / "sdpo" / "stepdpo_train.json").read_text())  # two stages of 2 steps, chained
    assert [s["model"] for s in tag["stages"]] == [str(arith_policy), str(out / "sdpo" / "stages" / "stage-1")]
    assert "Leaderboard" in res.output and "Paired comparisons" in res.output
    # step metrics by arith's exact truth, each with its interval, and their paired differences
    assert "Step verdicts on arith test (exact step truth)" in res.output and "Step differences" in res.output
    assert set(summary["steps"]["metrics"]) == {"sft", *methods}
    for m in summary["steps"]["metrics"].values():
        assert m["counts"]["solutions"] == summary["config"]["test_problems"]
        assert m["step_accuracy"]["ci95"][0] <= m["step_accuracy"]["value"] <= m["step_accuracy"]["ci95"][1]
    from trainer.demo import COMPARISONS

    assert {(r["baseline"], r["candidate"]) for r in summary["steps"]["paired"]} == set(COMPARISONS)
    assert f"stepdpo-bench app --results {out / 'results'}" in res.output
    assert (out / "results" / "leaderboard.duckdb").is_file()
    # the printed app command shows the training curves: the logs sit in the results folder and are ingested
    import duckdb

    con = duckdb.connect(str(out / "results" / "leaderboard.duckdb"), read_only=True)
    steps = dict(con.execute("SELECT run_name, count(*) FROM training_log GROUP BY run_name").fetchall())
    con.close()
    assert len(steps) == 4 and all(n in (2, 4) for n in steps.values()), steps
    assert "Training curves" in res.output
    # a rerun reuses every phase and reports the same numbers
    again = runner.invoke(app, ["demo", "--smoke", "--out", str(out), "--data-dir", str(shared_data)])
    assert again.exit_code == 0, again.output
    assert "reusing" in again.output
    assert json.loads((out / "summary.json").read_text())["accuracy"] == summary["accuracy"]


def test_the_same_seed_gives_the_same_numbers(arith_policy, shared_data, tmp_path):
    """Two fresh runs of the smoke demo from the same SFT model and seed (pipeline sampling, training, evaluation
    all redone): identical pairs, training curves and accuracies (fixed threads, deterministic kernels)."""
    import shutil

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        shutil.copytree(arith_policy, out / arith_policy.name)
        res = runner.invoke(app, ["demo", "--smoke", "--out", str(out), "--data-dir", str(shared_data)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    a, b = (json.loads((o / "summary.json").read_text()) for o in outs)
    assert a["accuracy"] == b["accuracy"] and a["funnel"] == b["funnel"]
    for method in ("dpo", "step-dpo", "scdpo", "sdpo"):
        la, lb = ((o / method / "train_log.jsonl").read_text().splitlines() for o in outs)
        strip = lambda lines: [{k: v for k, v in json.loads(x).items() if "per_s" not in k} for x in lines]  # noqa: E731
        assert strip(la) == strip(lb)
    pairs = [[json.loads(x) for x in (o / "pairs" / "step_dpo_pairs.jsonl").read_text().splitlines()] for o in outs]
    for rows in pairs:
        for r in rows:
            r.pop("policy")  # the SFT model's path: the two runs' own folders
    assert pairs[0] == pairs[1] and pairs[0]
