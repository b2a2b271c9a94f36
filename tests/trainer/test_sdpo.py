"""sDPO (``train --stages``): each stage starts from the previous stage's model and is referenced to it, checked
numerically against log-probs computed here by a plain forward pass; the stages resume and bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.tasks import arith

pytest.importorskip("transformers")
runner = CliRunner()


def _pairs(path: Path, n: int = 24) -> Path:
    """Step pairs from arith's gold steps: the true step vs the same step with its result off by one."""
    rows = []
    for p in arith.generate("train").problems[:n]:
        k = len(p.steps) - 1
        good = p.steps[k]
        head, _, result = good.rpartition("= ")
        rows.append(
            {
                "prompt": p.question,
                "initial_reason_steps": "".join(s + "\n" for s in p.steps[:k]),
                "chosen": good,
                "rejected": f"{head}= {int(result) + 1}",
                "problem_id": p.id,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(policy: Path, data: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["train", "--method", "step-dpo", "--model", str(policy), "--data", str(data), "--out", str(out),
         "--max-steps", "3", "--lr", "3e-3", "--beta", "0.5", "--batch-size", "4", "--prompt", "arith-step",
         "--max-length", "256", "--max-completion-length", "64", "--seed", "0", *extra],
    )  # fmt: skip


def _logps(model_dir: Path, data: Path) -> list[list[float]]:
    """[chosen, rejected] summed completion log-probs of every pair, one unpadded sequence at a time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.data import encode, load_pairs

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    pairs, _ = load_pairs(str(data), "step-dpo")
    enc, dropped = encode(pairs, tok, "step-dpo", "arith-step", 256, 64)
    assert dropped == 0
    out = []
    with torch.no_grad():
        for e in enc:
            row = []
            for comp in (e.chosen, e.rejected):
                ids = torch.tensor([e.prompt + comp])
                logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
                tgt = ids[0, 1:]
                row.append(logp[len(e.prompt) - 1 :].gather(1, tgt[len(e.prompt) - 1 :, None]).sum().item())
            out.append(row)
    return out


def test_each_stage_starts_from_and_is_referenced_to_the_previous(arith_policy, tmp_path):
    data = _pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "sdpo"
    res = _train(arith_policy, data, out, "--stages", "2")
    assert res.exit_code == 0, res.output
    stage1 = out / "stages" / "stage-1"
    tag = json.loads((out / "stepdpo_train.json").read_text())
    assert [s["model"] for s in tag["stages"]] == [str(arith_policy), str(stage1)]
    assert [s["reference"] for s in tag["stages"]] == [str(arith_policy), str(stage1)]
    parts = [out / "stages" / f"data-{i}.jsonl" for i in (1, 2)]
    assert [len(p.read_text().splitlines()) for p in parts] == [12, 12]
    assert "".join(p.read_text() for p in parts) == data.read_text()  # file order, nothing lost or repeated

    # stage 2's reference log-probs are stage 1's model on stage 2's data, not the SFT model's
    ref2 = json.loads((out / "reference_logps.json").read_text())
    assert ref2["model"] == str(stage1)
    by_stage1, by_sft = _logps(stage1, parts[1]), _logps(arith_policy, parts[1])
    gap = max(abs(a - b) for ra, rb in zip(by_stage1, by_sft, strict=True) for a, b in zip(ra, rb, strict=True))
    assert gap > 1e-2, "stage 1 did not move the model: the check below could not tell the references apart"
    for got, want in zip(ref2["logps"], by_stage1, strict=True):
        assert got == pytest.approx(want, abs=1e-3)
    ref1 = json.loads((stage1 / "reference_logps.json").read_text())
    assert ref1["model"] == str(arith_policy)
    for got, want in zip(ref1["logps"], _logps(arith_policy, parts[0]), strict=True):
        assert got == pytest.approx(want, abs=1e-3)
    # at each stage's first step the policy is its reference: rewards start at 0
    for d in (stage1, out):
        first = json.loads((d / "train_log.jsonl").read_text().splitlines()[0])
        assert abs(first["rewards/chosen"]) < 1e-4 and abs(first["rewards/rejected"]) < 1e-4

    # a rerun finds both stages finished and trains nothing
    logs = {d: (d / "train_log.jsonl").read_text() for d in (stage1, out)}
    res = _train(arith_policy, data, out, "--stages", "2")
    assert res.exit_code == 0, res.output
    assert "already trained" in res.output
    assert {d: (d / "train_log.jsonl").read_text() for d in (stage1, out)} == logs


def test_stages_from_a_list_of_files_and_bad_input(arith_policy, tmp_path):
    data = _pairs(tmp_path / "pairs.jsonl", 8)
    lines = data.read_text().splitlines(keepends=True)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(lines[:4]))
    b.write_text("".join(lines[4:]))
    res = _train(arith_policy, Path(f"{a},{b}"), tmp_path / "two")
    assert res.exit_code == 0, res.output
    tag = json.loads((tmp_path / "two" / "stepdpo_train.json").read_text())
    assert [s["data"] for s in tag["stages"]] == [str(a), str(b)]

    for extra, msg in (
        (("--stages", "1"), "at least 2 stages"),
        (("--stages", "9"), "cannot fill 9 stages"),
        (("--stages", "2", "--reference", "none"), "--reference none has no reference"),
    ):
        res = _train(arith_policy, data, tmp_path / "bad", *extra)
        assert res.exit_code == 2, res.output
        assert msg in res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad" / "stepdpo_train.json").exists()
