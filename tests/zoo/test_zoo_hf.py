"""Every zoo checkpoint through the hf backend and the trainer: eval, DPO and Step-DPO training then eval of the
result, pairs collect, and the CI gate with --candidate-model.  Checkpoints shaped like the Hub's, not ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

from ..helpers import write_last_step_pairs
from .build import ADAPTER, ENTRIES

pytestmark = pytest.mark.zoo
runner = CliRunner()
NAMES = [e.name for e in ENTRIES] + [ADAPTER]


def _eval(model: Path, out: Path, *extra: str) -> RunDir:
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(model),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "3",
            "--max-tokens",
            "12",
            "--out",
            str(out),
            *extra,
        ],
    )
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in out.iterdir() if (d / "run.json").is_file()]
    m = run.manifest()
    assert m.status == "done" and m.metrics["n_samples"] == 3
    return run


@pytest.fixture(scope="module")
def step_pairs(tmp_path_factory) -> Path:
    return write_last_step_pairs(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", 8, ids=True)


@pytest.mark.parametrize("name", NAMES)
def test_eval_train_pairs_and_gate(name, zoo, step_pairs, tmp_path):
    model = zoo[name]
    base = _eval(model, tmp_path / "base")
    # both trainers for 2 steps from this checkpoint, then the harness evaluates what they wrote
    for method in ("dpo", "step-dpo"):
        out = tmp_path / method
        res = runner.invoke(
            app,
            [
                "train",
                "--method",
                method,
                "--model",
                str(model),
                "--data",
                str(step_pairs),
                "--out",
                str(out),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--lr",
                "1e-4",
                "--prompt",
                "arith-step",
            ],
        )
        assert res.exit_code == 0, res.output
        lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [1, 2] and all(x["loss"] == x["loss"] for x in lines)
        run = _eval(out, tmp_path / f"eval-{method}")
        assert run.manifest().model.method == method
    # pairs collect: k solutions on a handful of training problems with a *-step prompt
    cfg = tmp_path / "pairs.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": str(model),
                "out": str(tmp_path / "pipe"),
                "limit": 3,
                "k": 2,
                "max_tokens": 12,
                "verify_chosen": False,
            }
        )
    )
    res = runner.invoke(app, ["pairs", "collect", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    ptr = json.loads((tmp_path / "pipe" / "collect.json").read_text())
    assert len(RunDir(tmp_path / "pipe" / "collect" / ptr["run_id"]).read_samples()) == 6
    # the gate evaluates the candidate with the baseline's settings (the same model: identical verdicts)
    res = runner.invoke(
        app,
        [
            "check",
            "--baseline",
            str(base.path),
            "--candidate-model",
            str(model),
            "--backend",
            "hf",
            "--results",
            str(tmp_path / "gate"),
            "--min-problems",
            "1",
        ],
    )
    assert res.exit_code in (0, 3), res.output  # identical runs: pass or inconclusive on 3 problems, never fail
    assert "FAIL" not in res.output
