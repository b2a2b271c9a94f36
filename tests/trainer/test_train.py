"""Training on a tiny real checkpoint: margins rise, a killed run resumes onto the same curve, the output is a
checkpoint the harness evaluates and tags."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

from ..helpers import write_last_step_pairs

pytest.importorskip("accelerate")
runner = CliRunner()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Step-DPO pairs on arith: earlier true steps, the true last step vs a wrong one."""
    return write_last_step_pairs(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", 48, ids=True)


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


def test_the_nll_control_raises_the_chosen_likelihood_and_ignores_the_rejected(tiny_ckpt, pairs, tmp_path):
    """--loss-type nll: the loss is the chosen completion's mean token NLL (so it falls), the chosen reward rises,
    and nothing pushes the rejected side: its reward moves only as much as shared weights carry it."""
    log = _train(tiny_ckpt, pairs, tmp_path / "nll", "--loss-type", "nll", "--lr", "3e-3")
    assert log[0]["loss"] > 0 and log[-1]["loss"] < log[0]["loss"]
    assert log[-1]["rewards/chosen"] > 0
    res = runner.invoke(app, _args(tiny_ckpt, pairs, tmp_path / "x", "--loss-type", "nll", "--rpo-alpha", "1"))
    assert res.exit_code == 2 and "--loss-type nll is nothing but that term" in res.output


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


def test_rerunning_a_finished_run_does_nothing(tiny_ckpt, pairs, tmp_path):
    out = tmp_path / "done"
    args = _args(tiny_ckpt, pairs, out, "--max-steps", "3", "--save-steps", "2")
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "train_log.jsonl").read_text(), (out / "model.safetensors").stat().st_mtime_ns
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "already trained with these settings (3 steps); nothing to do" in res.stderr
    assert ((out / "train_log.jsonl").read_text(), (out / "model.safetensors").stat().st_mtime_ns) == before
    longer = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--max-steps", "4", "--save-steps", "2"))
    assert longer.exit_code == 0 and "resumed at step 2 of 4" in longer.stderr  # other settings: it trains on
    assert [x["step"] for x in _log(out)] == [1, 2, 3, 4]


def test_bf16_reference_is_computed_like_the_policy(tiny_ckpt, pairs, tmp_path):
    """Under bf16 autocast the reference pass runs under the same autocast: before any update the policy's
    rewards are ~0, not a precision gap (fp32 reference vs bf16 policy gave margins of -0.002 and a biased acc)."""
    out = tmp_path / "bf16"
    res = runner.invoke(app, _args(tiny_ckpt, pairs, out, "--max-steps", "2", "--dtype", "bf16", "--lr", "1e-12"))
    assert res.exit_code == 0, res.output
    first = _log(out)[0]
    assert "mixed precision bf16" in res.stderr
    assert abs(first["rewards/margins"]) < 1e-4  # the pair's two sides see the same numerics
    assert abs(first["rewards/chosen"]) < 1e-2  # bf16 resolution of a summed log-prob (different padding widths)
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)


def test_lora_merge_from_a_gathered_state_equals_the_live_merge(tiny_ckpt):
    """What the main process does under ZeRO-3/FSDP (rebuild from the gathered state, then merge) gives the
    same weights as merging the live module."""
    import torch
    from peft import LoraConfig, get_peft_model

    from stepdpo_bench import checkpoints
    from trainer.train import TrainConfig, lora_from_state

    cfg = TrainConfig(method="step-dpo", model=str(tiny_ckpt), data="-", out="-", lora_r=4)
    ckpt = checkpoints.inspect(str(tiny_ckpt))
    base = checkpoints.load_model(ckpt, dtype=torch.float32)
    live = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in live.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a trained adapter, not the zero init
    state = {k: v.clone() for k, v in live.state_dict().items()}
    rebuilt = lora_from_state(state, ckpt, cfg).merge_and_unload().state_dict()
    merged = live.merge_and_unload().state_dict()
    assert rebuilt.keys() == merged.keys()
    assert max(float((rebuilt[k] - merged[k]).abs().max()) for k in merged) < 1e-6
    assert max(float((merged[k] - checkpoints.load_model(ckpt).state_dict()[k]).abs().max()) for k in merged) > 1e-3


def test_a_config_file_takes_every_option_in_either_spelling_and_the_command_line_wins(tmp_path):
    """docs/training.md: `--config` takes every option as a key (`batch_size` or `batch-size`), the required
    ones included; an option given on the command line overrides the file; an unknown key is refused by name."""
    from dataclasses import fields

    from trainer.train import TrainConfig

    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        "method: step-dpo\nmodel: some/model\ndata: pairs.jsonl\nout: out\nbatch-size: 4\nmax_steps: 3\n"
        "loss-type: ipo\nlora_r: 8\ngradient-checkpointing: true\n"
    )
    got = TrainConfig.load(cfg, batch_size=None, lr=2e-6)
    assert (got.method, got.model, got.data, got.out) == ("step-dpo", "some/model", "pairs.jsonl", "out")
    assert (got.batch_size, got.max_steps, got.loss_type, got.lora_r, got.gradient_checkpointing) == (
        4,
        3,
        "ipo",
        8,
        True,
    )
    assert got.lr == 2e-6 and TrainConfig.load(cfg, batch_size=16).batch_size == 16
    every = {f.name: getattr(got, f.name) for f in fields(TrainConfig)}
    (tmp_path / "all.json").write_text(json.dumps({k.replace("_", "-"): v for k, v in every.items()}))
    assert TrainConfig.load(tmp_path / "all.json") == got
    (tmp_path / "bad.yaml").write_text(cfg.read_text() + "batchsize: 4\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown option\(s\) batchsize"):
        TrainConfig.load(tmp_path / "bad.yaml")
