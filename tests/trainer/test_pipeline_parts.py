"""Pipeline pieces that need no model: config, judge replies, contamination, arith truth, public pairs, and the
promise that what the pipeline samples after a prefix is exactly what the trainer trains on."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.locators.judge import judge_prompt, read_reply
from stepdpo_bench.prompts import get_template
from stepdpo_bench.tasks import arith
from trainer.data import PairsError, load_pairs, prompt_text
from trainer.pipeline.config import PipelineError, load_config
from trainer.pipeline.contamination import build_index
from trainer.pipeline.context import initial_text
from trainer.pipeline.public import import_pairs

runner = CliRunner()


def test_config_from_yaml_with_overrides_and_clear_errors(tmp_path):
    f = tmp_path / "pairs.yaml"
    f.write_text("model: m\nout: o\nk: 3\nlocators: [symbolic, rollout]\n")
    cfg = load_config(f, {"limit": "5", "locators": "rollout"})
    assert (cfg.k, cfg.limit, cfg.locators, cfg.primary_locator) == (3, 5, ["rollout"], "rollout")
    f.write_text("model: m\nout: o\nkk: 3\n")
    with pytest.raises(PipelineError, match=r"pairs.yaml: unknown key 'kk'"):
        load_config(f)
    f.write_text("model: m\nout: o\nk: many\n")
    with pytest.raises(PipelineError, match=r"pairs.yaml: k must be int"):
        load_config(f)
    f.write_text("model: m\nout: o\nlocators: [judge]\n")
    with pytest.raises(PipelineError, match="judge_model and judge_base_urls"):
        load_config(f)
    f.write_text("model: [unclosed\n")
    with pytest.raises(PipelineError, match=r"pairs.yaml:\d+: not valid YAML"):
        load_config(f)
    with pytest.raises(PipelineError, match="no policy model"):
        load_config(None, {"out": "o"})


def test_greedy_collect_needs_one_sample_and_exploring_continuations():
    """On-policy mining: collect at temperature 0 is one greedy solution per problem, and the continuations from a
    prefix (rectify, rollout) need their own temperature, or every one of them is the same."""
    base = {"model": "m", "out": "o", "temperature": "0"}
    with pytest.raises(PipelineError, match="k=4 at temperature 0 samples the same greedy solution 4 times"):
        load_config(None, base)
    with pytest.raises(PipelineError, match=r"rectify_n > 1 continuations at temperature 0.*set rectify_temperature"):
        load_config(None, {**base, "k": "1"})
    with pytest.raises(PipelineError, match=r"rollout_m > 1 .*rectify_temperature"):
        load_config(None, {**base, "k": "1", "rectify_n": "1", "locators": "symbolic,rollout"})
    cfg = load_config(None, {**base, "k": "1", "rectify_temperature": "0.8"})
    assert (cfg.temperature, cfg.continuation_temperature) == (0.0, 0.8)
    assert load_config(None, {"model": "m", "out": "o"}).continuation_temperature == 0.8  # default: temperature
    with pytest.raises(PipelineError, match="rectify_temperature must be 0 or more"):
        load_config(None, {"model": "m", "out": "o", "rectify_temperature": "-1"})


REPLIES = [  # (recorded judge reply, solution steps, expected outcome, expected 0-based step)
    ("Step 1: correct\nStep 2: incorrect", 3, "located", 1),
    ("**Step 1:** Correct\n**Step 2:** Neutral\n**Step 3:** Incorrect - 7 * 8 is 56", 4, "located", 2),
    ("Step 1 - correct\nStep 2 - neutral\nStep 3 - correct", 3, "none", None),
    ("The first incorrect step is Step 2.", 3, "located", 1),
    ("Step 1: correct\nStep 3: incorrect\nThe first incorrect step is Step 2", 3, "invalid", None),
    ("Step 7: incorrect", 3, "invalid", None),
    ("All steps are correct.", 3, "none", None),
    ("I am not sure what you mean.", 3, "unparseable", None),
    ("", 3, "unparseable", None),
]


@pytest.mark.parametrize(("reply", "n", "outcome", "step"), REPLIES)
def test_judge_replies_are_read_never_guessed(reply, n, outcome, step):
    loc = read_reply(reply, n)
    assert (loc.outcome, loc.step, loc.locator) == (outcome, step, "judge")
    assert loc.confidence == (0.0 if step is None else loc.confidence) and loc.spent == 1


def test_judge_prompt_numbers_steps_our_way():
    text = judge_prompt("How many?", None, "5", "6", ["Let's think.", "Step 1: 2 + 2 = 4", "**Step 2:** 4 + 2 = 6"])
    assert "Step 1: Let's think.\nStep 2: 2 + 2 = 4\nStep 3: 4 + 2 = 6" in text
    assert "the answer is 5" in text and "is wrong" in text


def test_contamination_exact_and_ngram(shared_data):
    index, warnings = build_index(["math500", "gsm8k"], str(shared_data), 13)
    assert not warnings
    q = json.loads((shared_data / "math500" / "test.jsonl").open().readline())["problem"]
    assert index.match(q).startswith("exact:")
    words = q.split()
    if len(words) > 20:  # a paraphrase around a shared 13-word run
        assert index.match("Consider this: " + " ".join(words[2:18]) + " please.").startswith("13-gram:")
    assert index.match("Ava has 3 apples. How many now?") is None
    with pytest.raises(PipelineError, match="could not load any"):
        build_index(["gsm8k"], str(shared_data / "nowhere"), 13)


def test_arith_truth_catches_true_equations_with_wrong_operands():
    p = arith.generate("test", 1).problems[0]
    good = [*p.steps[:-1], p.steps[-1] + f"\nThe answer is: {p.gold}"]
    assert arith.first_wrong_step(p, good) is None
    a, rest = p.steps[0].split(": ", 1)[1].split(" ", 1)
    lhs_op, b = rest.split(" = ")[0].split(" ")
    value = int(a) + (int(b) + 1) * (1 if lhs_op == "+" else -1)
    wrong_operand = f"Step 1: {a} {lhs_op} {int(b) + 1} = {value}"  # true arithmetic, wrong operand
    assert arith.first_wrong_step(p, [wrong_operand, *good[1:]]) == 0
    assert arith.first_wrong_step(p, good[:1]) == 0 if len(p.steps) > 1 else True
    assert arith.first_wrong_step(p, [*p.steps, "The answer is: 99999"]) == len(p.steps)


@pytest.mark.parametrize("prompt", ["arith-step", "qwen2-boxed-step", "qwen2-boxed"])
def test_sampled_prefix_equals_trained_prefix(prompt):
    """The pipeline samples a continuation after the correct steps; the trainer must see the same text."""
    from trainer.data import Pair
    from trainer.pipeline.config import PipelineConfig
    from trainer.pipeline.context import Pipeline

    p = arith.generate("train", 1).problems[0]
    pipe = Pipeline(PipelineConfig(model="unused", out="unused", prompt=prompt))
    t = get_template(prompt)
    steps = [t.assistant_prefix + p.steps[0].split(": ", 1)[1] if prompt != "qwen2-boxed" else p.steps[0], *p.steps[1:]]
    for k in range(len(steps)):
        sampled_prompt, opening = pipe.prefix_prompt(p, steps[:k])
        chosen = steps[k]
        pair = Pair("x", p.question, initial_text(steps[:k]), chosen, "Step 9: 1 + 1 = 3")
        trained = prompt_text(pair, None, prompt)
        # what the policy saw plus what it wrote == what the trainer scores, character for character
        assert sampled_prompt + chosen.removeprefix(opening) == trained + chosen


@pytest.mark.parametrize("prompt", ["qwen2-boxed-step", "alpaca-cot-step", "deepseek-math-step", "arith-step"])
@pytest.mark.parametrize("wrong", ["Step 1", "Step 2", "last"])
def test_an_error_at_any_step_gives_the_prompt_the_policy_really_saw(prompt, wrong):
    """A real completion of a *-step template, split by the real splitter (its opening line is a step of its
    own): for an error at Step 1, Step 2 or the last step, the pipeline's prompt is exactly the original text up to
    that step (no doubled "Step 1:"), and the trainer scores the same characters."""
    from stepdpo_bench.steps import split_steps
    from trainer.data import Pair
    from trainer.pipeline.config import PipelineConfig
    from trainer.pipeline.context import Pipeline

    p = arith.generate("train", 1).problems[0]
    pipe = Pipeline(PipelineConfig(model="unused", out="unused", prompt=prompt))
    t = get_template(prompt)
    generated = "3 + 4 = 7\nStep 2: 7 * 2 = 14\nStep 3: 14 - 1 = 13\nThe answer is: 13"
    head = pipe.head(p)
    original = head + generated  # what the policy saw and wrote
    steps = split_steps(t.assistant_prefix + generated)
    first = {"Step 1": "Step 1", "Step 2": "Step 2"}.get(wrong)
    k = next(i for i, s in enumerate(steps) if s.startswith(first)) if first else len(steps) - 1
    sampled_prompt, opening = pipe.prefix_prompt(p, steps[:k])  # opening: what the template already said
    assert opening == ("" if k else t.assistant_prefix)
    assert sampled_prompt == original[: original.index(steps[k])] + opening, (sampled_prompt[-80:], steps[:k])
    pair = Pair("x", p.question, initial_text(steps[:k]), steps[k], "Step 9: 1 + 1 = 3")
    trained = prompt_text(pair, None, prompt) + steps[k]
    assert trained == sampled_prompt + steps[k].removeprefix(opening)  # the trainer scores the same characters


def test_import_public_pairs_with_guard(tmp_path, shared_data):
    q = json.loads((shared_data / "math500" / "test.jsonl").open().readline())["problem"]
    rows = [
        {
            "dataset": "MATH",
            "prompt": q,
            "initial_reason_steps": "Let's think step by step.\nStep 1: x\n",
            "chosen": "Step 2: y",
            "rejected": "Step 2: z",
            "full_chosen": "...",
            "full_rejected": "...",
            "answer": "1",
        },
        {
            "dataset": "GSM8K",
            "prompt": "Ava has 3 apples and buys 2 more.",
            "initial_reason_steps": "",
            "chosen": "Step 1: 3 + 2 = 5",
            "rejected": "Step 1: 3 + 2 = 6",
            "answer": "5",
        },
    ]
    src = tmp_path / "public.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept, dropped, _ = import_pairs(str(src), ["math500"], str(shared_data))
    assert [r["dataset"] for r in kept] == ["GSM8K"] and dropped[0]["reason"].startswith("exact:")
    out = tmp_path / "mine.jsonl"
    res = runner.invoke(
        app, ["pairs", "import", str(src), "--out", str(out), "--guard", "math500", "--data-dir", str(shared_data)]
    )
    assert res.exit_code == 0, res.output
    assert "1 pairs" in res.output and len(load_pairs(str(out), "step-dpo")[0]) == 1
    rows[1].pop("rejected")
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PairsError, match=r"public.jsonl:2: field 'rejected'"):
        import_pairs(str(src), [], None)
    res = runner.invoke(app, ["pairs", "import", str(src), "--out", str(out), "--guard", ""])
    assert res.exit_code == 2 and "public.jsonl:2: field 'rejected'" in res.output
    assert len(load_pairs(str(out), "step-dpo")[0]) == 1  # the earlier output is untouched
