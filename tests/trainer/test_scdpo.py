"""Step-controlled mining (SCDPO) on arith, end to end from the CLI: what the pairs are (checked against arith's
generator truth, not the pipeline's own bookkeeping), resume after a kill, and both ways of training on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.grading import grade
from stepdpo_bench.runs import read_log
from stepdpo_bench.steps import split_steps
from stepdpo_bench.tasks import arith

from ..helpers import collected_samples

pytest.importorskip("transformers")
runner = CliRunner()


def _config(tmp_path: Path, policy: Path, **kw) -> Path:
    cfg = {
        "model": str(policy),
        "out": str(tmp_path / "pipe"),
        "mining": "step-controlled",
        "limit": 48,
        "k": 2,
        "temperature": 0.3,
        "max_tokens": 48,
        "chunk_size": 8,
        "control_temperatures": [1.0, 1.5],
        "control_tries": 4,
        **kw,
    }
    f = tmp_path / "pairs.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return f


def test_step_controlled_pairs(arith_policy_good, tmp_path):
    f = _config(tmp_path, arith_policy_good)
    res = runner.invoke(app, ["pairs", "run", "--config", str(f)])
    assert res.exit_code == 0, res.output
    pipe = tmp_path / "pipe"
    funnel = json.loads((pipe / "funnel.json").read_text())
    assert list(funnel) == ["collect", "control", "build"]
    problems = {p.id: p for p in arith.generate("train").problems}
    sols = collected_samples(pipe)
    steps_pairs = [json.loads(x) for x in (pipe / "step_dpo_pairs.jsonl").read_text().splitlines()]
    dpo_pairs = [json.loads(x) for x in (pipe / "dpo_pairs.jsonl").read_text().splitlines()]
    assert len(steps_pairs) == len(dpo_pairs) == funnel["build"]["step-dpo pairs"] >= 8
    pure = 0
    for s, d in zip(steps_pairs, dpo_pairs, strict=True):
        prob = problems[s["problem_id"]]
        correct = sols[f"{s['problem_id']}#{s['sample_idx']}"]
        assert correct["correct"]
        # the chosen side is the policy's correct solution, cut at the first difference
        whole = split_steps(s["initial_reason_steps"] + s["full_chosen"])
        assert whole == list(correct["steps"])
        assert s["chosen"] == whole[s["step_index"]] != s["rejected"]
        # the rejected side shares the prefix, then reaches a wrong answer
        bad = split_steps(s["initial_reason_steps"] + s["full_rejected"])
        assert bad[: s["step_index"]] == whole[: s["step_index"]]
        assert not grade(bad[-1], prob.gold, "arith").correct
        assert s["error_step"] == s["step_index"] >= s["control_step"]
        assert s["mining"] == "step-controlled" and s["temperature"] in (1.0, 1.5)
        # SCDPO's whole-solution pair: shared steps before the controlled step, both continuations to the end
        assert d["initial_reason_steps"] == "".join(x + "\n" for x in whole[: s["control_step"]])
        assert split_steps(d["initial_reason_steps"] + d["chosen"]) == whole
        assert split_steps(d["initial_reason_steps"] + d["rejected"]) == bad
        pure += arith.first_wrong_step(prob, bad) == s["step_index"]
    reported = funnel["build"]["purity (arith: first wrong step = error_step)"]
    assert reported == f"{100 * pure / len(steps_pairs):.1f}%"
    # the truth's own check: when the chosen solution is truly right, is the rejected step the first error?
    truly_right = [s for s in steps_pairs if arith.first_wrong_step(problems[s["problem_id"]], _whole(s)) is None]
    assert len(truly_right) >= 5
    hits = sum(
        arith.first_wrong_step(problems[s["problem_id"]], split_steps(s["initial_reason_steps"] + s["full_rejected"]))
        == s["step_index"]
        for s in truly_right
    )
    assert hits / len(truly_right) >= 0.9

    # a kill mid-control: drop the log's tail and rerun; the same attempts come back, none twice
    log = pipe / "controlled.jsonl"
    before = read_log(log)
    keep = len(before) // 2
    log.write_text("".join(json.dumps(r) + "\n" for r in before[:keep]) + '{"torn')
    res = runner.invoke(app, ["pairs", "run", "--config", str(f)])
    assert res.exit_code == 0, res.output
    after = read_log(log)
    assert sorted(after, key=lambda r: (r["key"], r["round"])) == sorted(before, key=lambda r: (r["key"], r["round"]))
    assert [json.loads(x) for x in (pipe / "step_dpo_pairs.jsonl").read_text().splitlines()] == steps_pairs

    # both ways to train on them: Step-DPO on the step pairs, whole-solution DPO (SCDPO) on the shared prefix
    for method, data in (("step-dpo", "step_dpo_pairs.jsonl"), ("dpo", "dpo_pairs.jsonl")):
        res = runner.invoke(
            app,
            ["train", "--method", method, "--model", str(arith_policy_good), "--data", str(pipe / data),
             "--out", str(tmp_path / method), "--max-steps", "2", "--batch-size", "4", "--lr", "1e-4",
             "--prompt", "arith-step", "--max-length", "256", "--max-completion-length", "96"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert (tmp_path / method / "config.json").is_file()


def _whole(s: dict) -> list[str]:
    return split_steps(s["initial_reason_steps"] + s["full_chosen"])


def test_step_controlled_settings_are_checked(arith_policy, tmp_path):
    for sets, msg in (
        (["mining=controlled"], "mining 'controlled'"),
        (["mining=step-controlled", "control_temperatures=0,1"], "control_temperatures"),
        (["mining=step-controlled", "control_steps=some"], "control_steps"),
    ):
        args = ["pairs", "run", "--model", str(arith_policy), "--out", str(tmp_path / "p")]
        res = runner.invoke(app, [*args, *[x for s in sets for x in ("--set", s)]])
        assert res.exit_code == 2, res.output
        assert msg in res.output
    f = _config(tmp_path, arith_policy)
    res = runner.invoke(app, ["pairs", "locate", "--config", str(f)])
    assert res.exit_code == 2 and "not part of mining 'step-controlled'" in res.output
    assert not (tmp_path / "pipe").exists()
