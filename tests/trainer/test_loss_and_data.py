"""The loss against hand computation, and Step-DPO tokenization rules."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from trainer.data import PairsError, encode, load_pairs, prompt_text  # noqa: E402
from trainer.loss import dpo_loss  # noqa: E402

PC, PR, RC, RR = [-5.0, -3.0], [-6.0, -2.0], [-5.5, -3.5], [-5.5, -2.5]


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_sigmoid_loss_by_hand():
    beta = 0.5
    losses, cr, rj = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta)
    for i in range(2):
        logits = (PC[i] - PR[i]) - (RC[i] - RR[i])
        assert losses[i].item() == pytest.approx(-math.log(1 / (1 + math.exp(-beta * logits))), abs=1e-12)
        assert cr[i].item() == pytest.approx(beta * (PC[i] - RC[i]))
        assert rj[i].item() == pytest.approx(beta * (PR[i] - RR[i]))


def test_label_smoothing_and_ipo_match_trl_formulas():
    beta, ls = 0.1, 0.2
    logits = (_t(PC) - _t(PR)) - (_t(RC) - _t(RR))
    trl_sigmoid = (
        -torch.nn.functional.logsigmoid(beta * logits) * (1 - ls) - torch.nn.functional.logsigmoid(-beta * logits) * ls
    )
    losses, _, _ = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta, ls)
    assert torch.allclose(losses, trl_sigmoid)
    ipo, _, _ = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta, loss_type="ipo")
    assert torch.allclose(ipo, (logits - 1 / (2 * beta)) ** 2)


def test_dpop_penalises_only_a_chosen_completion_below_its_reference():
    beta, lam = 0.1, 50.0
    plain, _, _ = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta)
    dpop, _, _ = dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), beta, loss_type="dpop", dpop_lambda=lam)
    # example 0: chosen above its reference (-5.0 > -5.5): no penalty; example 1: also above (-3.0 > -3.5)
    assert torch.allclose(dpop, plain)
    below = _t([-6.0, -3.0])  # example 0 now 0.5 below its reference
    dpop, _, _ = dpo_loss(below, _t(PR), _t(RC), _t(RR), beta, loss_type="dpop", dpop_lambda=lam)
    logits0 = (-6.0 - PR[0]) - (RC[0] - RR[0])
    expected = -math.log(1 / (1 + math.exp(-beta * (logits0 - lam * 0.5))))
    assert dpop[0].item() == pytest.approx(expected, abs=1e-12) and dpop[0].item() > plain[0].item()
    with pytest.raises(ValueError, match="unknown loss_type"):
        dpo_loss(_t(PC), _t(PR), _t(RC), _t(RR), loss_type="kto")


@pytest.fixture(scope="module")
def tok(tiny_ckpt):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_ckpt)


def _pairs(tmp_path, rows):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


ROW = {
    "prompt": "Ava has 3 pens. Then Ava gets 4 more pens. How many?",
    "initial_reason_steps": "Let's think step by step.\nStep 1: 3 + 4 = 7\n",
    "chosen": "Step 2: so 7 pens.",
    "rejected": "Step 2: so 8.",
}


def test_steps_inside_the_assistant_turn_and_no_eos_for_a_step(tmp_path, tok):
    pairs, sha = load_pairs(str(_pairs(tmp_path, [ROW])), "step-dpo")
    text = prompt_text(pairs[0], tok, "qwen2-boxed")
    assert text.endswith("<|im_start|>assistant\nLet's think step by step.\nStep 1: 3 + 4 = 7\n")
    assert len(sha) == 64
    (e,), dropped = encode(pairs, tok, "step-dpo", "qwen2-boxed", 512, 128)
    assert dropped == 0 and e.chosen[-1] != tok.eos_token_id
    assert tok.decode(e.chosen) == ROW["chosen"] and tok.decode(e.rejected) == ROW["rejected"]
    (d,), _ = encode(pairs, tok, "dpo", "qwen2-boxed", 512, 128)
    assert d.chosen[-1] == tok.eos_token_id and d.rejected[-1] == tok.eos_token_id
    chat = prompt_text(pairs[0], tok, "chat")
    assert chat.startswith("<|im_start|>user\n") and chat.endswith("assistant\n" + ROW["initial_reason_steps"])


def test_long_prompts_are_cut_from_the_left_and_long_steps_dropped(tmp_path, tok):
    long = dict(ROW, prompt="word " * 400)
    huge = dict(ROW, chosen="Step 2: " + "x " * 300)
    pairs, _ = load_pairs(str(_pairs(tmp_path, [long, huge])), "step-dpo")
    enc, dropped = encode(pairs, tok, "step-dpo", "qwen2-boxed", 128, 64)
    assert dropped == 1 and len(enc) == 1
    e = enc[0]
    assert len(e.prompt) + max(len(e.chosen), len(e.rejected)) == 128
    assert tok.decode(e.prompt).endswith("Step 1: 3 + 4 = 7\n")  # the end of the prompt (the steps) survives
    assert tok.decode(e.chosen) == ROW["chosen"]  # the step itself is never cut


def test_bad_pairs_name_the_record(tmp_path):
    f = _pairs(tmp_path, [ROW, dict(ROW, chosen="  ")])
    with pytest.raises(PairsError, match=r"p\.jsonl:2: field 'chosen' is missing or empty"):
        load_pairs(str(f), "step-dpo")
    f.write_text(json.dumps({k: v for k, v in ROW.items() if k != "rejected"}) + "\n")
    with pytest.raises(PairsError, match="field 'rejected'"):
        load_pairs(str(f), "step-dpo")
    f.write_text("{oops\n")
    with pytest.raises(PairsError, match=r"p\.jsonl:1: not valid JSON"):
        load_pairs(str(f), "step-dpo")
