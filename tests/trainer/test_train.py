"""Training on a tiny real checkpoint: margins rise, a killed run resumes onto the same curve, the output is a
checkpoint the harness evaluates and tags."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir
from stepdpo_bench.tasks import arith

pytest.importorskip("accelerate")
runner = CliRunner()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Step-DPO pairs on arith: earlier true steps, the true last step vs a wrong one."""
    f = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    rows = []
    for p in arith.generate("train", 48).problems:
        *before, last = p.steps
        lhs, rhs = last.split(" = ")
        rows.append(
            {
                "prompt": p.question,
                "initial_reason_steps": "\n".join(before) + "\n",
                "chosen": last,
                "rejected": f"{lhs} = {int(rhs) + 3}",
                "problem_id": p.id,
            }
        )
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def _args(tiny_ckpt, pairs, out, *extra):
    common = ["--lr", "1e-3", "--batch-size", "8", "--beta", "0.5", "--prompt", "arith-step", "--seed", "3"]
    return [
        "train",
        "--method",
        "step-dpo",
        "--model",
        str(tiny_ckpt),
        "--data",
        str(pairs),
        "--out",
        str(out),
        *common,
        *extra,
    ]


def _log(out):
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def test_margins_rise_and_the_checkpoint_is_evaluable(tiny_ckpt, pairs, tmp_path):
    out = tmp_path / "ckpt"
    res = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--max-steps", "12"))
    assert res.exit_code == 0, res.output
    log = _log(out)
    assert [x["step"] for x in log] == list(range(1, 13))
    first, last = log[0], log[-1]
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at the start
    assert last["rewards/margins"] > 0.3 and last["loss"] < first["loss"]
    assert json.loads((out / "train_config.json").read_text())["pairs"] == 48
    tag = json.loads((out / "stepdpo_train.json").read_text())
    assert tag["method"] == "step-dpo" and tag["base_model"] == str(tiny_ckpt) and tag["steps"] == 12
    ev = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(out),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "4",
            "--max-tokens",
            "8",
            "--out",
            str(tmp_path / "results"),
        ],
    )
    assert ev.exit_code == 0, ev.output
    (run,) = [RunDir(d) for d in (tmp_path / "results").iterdir()]
    m = run.manifest().model
    assert m.method == "step-dpo" and m.base_model == str(tiny_ckpt)


def _train(tiny_ckpt, pairs, out, *extra):
    res = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--max-steps", "3", *extra))
    assert res.exit_code == 0, res.output
    return _log(out)


def test_a_frozen_reference_follows_the_precomputed_curve(tiny_ckpt, pairs, tmp_path):
    """The same reference log-probs, computed once up front or by a frozen copy at every step: the same curve."""
    pre = _train(tiny_ckpt, pairs, tmp_path / "pre")
    frozen = _train(tiny_ckpt, pairs, tmp_path / "frozen", "--reference", "frozen")
    assert [x["step"] for x in frozen] == [1, 2, 3]
    for a, b in zip(pre, frozen, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4)
        assert b["rewards/margins"] == pytest.approx(a["rewards/margins"], abs=1e-4)


def test_ipo_starts_at_its_target_and_no_reference_starts_elsewhere(tiny_ckpt, pairs, tmp_path):
    ipo = _train(tiny_ckpt, pairs, tmp_path / "ipo", "--loss-type", "ipo")
    assert ipo[0]["loss"] == pytest.approx((1 / (2 * 0.5)) ** 2, abs=1e-4)  # policy == reference: (0 - 1/2beta)^2
    free = _train(tiny_ckpt, pairs, tmp_path / "none", "--reference", "none")
    # without a reference the first logits are the policy's own chosen - rejected gap, not 0: loss != ln 2
    assert abs(free[0]["loss"] - 0.6931) > 1e-3
    assert free[-1]["rewards/margins"] > free[0]["rewards/margins"]


def test_gradient_accumulation_counts_optimizer_steps(tiny_ckpt, pairs, tmp_path):
    out = tmp_path / "accum"
    res = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--epochs", "1", "--batch-size", "4", "--grad-accum", "3"))
    assert res.exit_code == 0, res.output
    assert [x["step"] for x in _log(out)] == [1, 2, 3, 4]  # 48 pairs / (4 x 3) = 4 optimizer steps


def test_lora_trains_and_saves_a_merged_checkpoint(tiny_ckpt, pairs, tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    res = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--max-steps", "12", "--lora-r", "16", "--lr", "2e-2"))
    assert res.exit_code == 0, res.output
    assert _log(out)[-1]["rewards/margins"] > 0
    model = AutoModelForCausalLM.from_pretrained(out)  # a plain model: the adapter was merged
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_bad_input(tiny_ckpt, tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"prompt": "p", "chosen": "", "rejected": "r"}) + "\n")
    res = runner.invoke(
        app,
        ["train", "--method", "step-dpo", "--model", str(tiny_ckpt), "--data", str(f), "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2 and "bad.jsonl:1: field 'chosen' is missing or empty" in res.stderr
    f.write_text(json.dumps({"prompt": "p", "chosen": "c " * 200, "rejected": "r"}) + "\n")
    res = runner.invoke(
        app,
        [
            "train",
            "--method",
            "dpo",
            "--model",
            str(tiny_ckpt),
            "--data",
            str(f),
            "--out",
            str(tmp_path / "o"),
            "--max-completion-length",
            "16",
        ],
    )
    assert res.exit_code == 2 and "all 1 pairs were dropped as too long" in res.stderr
