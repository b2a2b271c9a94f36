from __future__ import annotations

import math

import pytest

from stepdpo_bench.metrics import compute_metrics, majority_correct, pass_at_k, wilson
from stepdpo_bench.prompts import PROMPT_NAMES, PromptError, get_template, render
from stepdpo_bench.steps import split_steps
from stepdpo_bench.tasks import Problem

P = Problem("x/0", "What is $1+1$?", "2")


def test_step_dpo_formats_are_exact():
    assert render(get_template("qwen2-boxed-step"), P) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is $1+1$?\n"
        "Please reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>assistant\nLet's think step by step.\nStep 1: "
    )
    assert render(get_template("deepseek-math"), P) == (
        "User: What is $1+1$?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"
    )
    assert render(get_template("alpaca-cot-step"), P).endswith("### Response:\nLet's think step by step.\nStep 1: ")
    assert get_template("qwen2-boxed-step").assistant_prefix == "Let's think step by step.\nStep 1: "


def test_every_prompt_renders_and_fewshot_has_shots():
    for name in PROMPT_NAMES:
        t = get_template(name)
        out = render(t, P, as_messages=True) if t.chat else render(t, P)
        assert "What is $1+1$?" in str(out)
    assert render(get_template("gsm8k-8shot"), P).count("The answer is") == 8
    assert render(get_template("minerva-4shot"), P).count("I hope it is correct") == 4


def test_chat_needs_a_template_and_prompt_files(tmp_path):
    with pytest.raises(PromptError, match="chat template"):
        render(get_template("chat"), P, tokenizer=object())
    with pytest.raises(PromptError, match="unknown prompt"):
        get_template("nope")
    f = tmp_path / "p.txt"
    f.write_text("Solve {question} and box it: \\boxed{}")
    assert render(get_template(prompt_file=f), P) == "Solve What is $1+1$? and box it: \\boxed{}"
    f.write_text("no placeholder")
    with pytest.raises(PromptError, match="placeholder"):
        get_template(prompt_file=f)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("Step 1: a\nStep 2: b\nThe answer is: 3", ["Step 1: a", "Step 2: b\nThe answer is: 3"]),
        ("Let's think step by step.\nStep 1: a\nStep 2: b", ["Let's think step by step.", "Step 1: a", "Step 2: b"]),
        ("**Step 1:** a\n**Step 2:** b", ["**Step 1:** a", "**Step 2:** b"]),
        ("First para.\n\nSecond para.\n\n\nThird.", ["First para.", "Second para.", "Third."]),
        ("", []),
    ],
)
def test_split_steps(text, steps):
    assert split_steps(text) == steps


def test_pass_at_k_matches_the_combinatorial_definition():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (8, 0, 4), (8, 8, 1), (20, 1, 10)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact)


def test_majority_vote_groups_equivalent_answers():
    same = lambda a, b: {a, b} <= {"1/2", "0.5", "\\frac12"}  # noqa: E731
    assert majority_correct(["1/2", "3", "0.5", "3", "\\frac12"], [True, False, True, False, True], same)
    assert not majority_correct(["3", "1/2", "3"], [False, True, False], same)
    assert not majority_correct([None, None], [False, False], same)


def _s(pid, idx, ok, subject="A"):
    return {
        "problem_id": pid,
        "sample_idx": idx,
        "correct": ok,
        "pred": "1" if ok else "2",
        "finish_reason": "stop",
        "n_tokens": 10,
        "subject": subject,
        "level": "1",
    }


def test_metrics_cluster_by_problem():
    # two problems, 4 samples each: 4/4 and 0/4 -> accuracy .5 with the stderr of the two problem means
    samples = [_s("a", i, True) for i in range(4)] + [_s("b", i, False, "B") for i in range(4)]
    m = compute_metrics(samples)
    assert m["accuracy"] == 0.5 and m["n_problems"] == 2 and m["n_samples"] == 8
    assert m["stderr"] == pytest.approx(0.5)  # sd of (1, 0) / sqrt(2)
    assert m["pass@k"]["1"] == 0.5 and m["pass@k"]["4"] == 0.5 and m["maj@k"]["4"] == 0.5
    assert m["by_subject"]["A"]["accuracy"] == 1.0


def test_wilson_interval_is_honest_at_the_edges():
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    m = compute_metrics([_s(str(i), 0, False) for i in range(20)])
    assert m["ci95"][1] > 0.1  # not the degenerate [0, 0] of the normal interval


def test_pass_at_1_equals_accuracy_with_uneven_samples_per_problem():
    """Each problem's pass@k comes from all its own samples (not truncated to the smallest n)."""
    samples = [_s("a", i, i == 0) for i in range(4)] + [_s("b", i, True) for i in range(2)]
    m = compute_metrics(samples)
    assert m["pass@k"]["1"] == pytest.approx(m["accuracy"]) == pytest.approx((0.25 + 1.0) / 2)
    assert m["pass@k"]["2"] == pytest.approx((pass_at_k(4, 1, 2) + 1.0) / 2) and "4" not in m["pass@k"]
