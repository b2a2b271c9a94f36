"""Thinking traces: the trace is stored apart from the answer, only the answer is graded, a trace cut by the
budget has no answer (finish reason ``thinking``), and the run reports how long and how often cut."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.evaluate import CUT_NOTE, EvalResult, _grade_chunk
from stepdpo_bench.grading import grade_batch
from stepdpo_bench.prompts import get_template
from stepdpo_bench.reports import results_table
from stepdpo_bench.samplers import Completion, SamplingParams
from stepdpo_bench.tasks import Problem
from stepdpo_bench.thinking import ThinkSpec, detect, parse_option, split

from ..helpers import runs_by_task

runner = CliRunner()
R1 = ThinkSpec(opened=True)  # DeepSeek-R1 distills: the template opened the trace


def test_split_rules():
    assert split("let me see \\boxed{3}</think>The answer is \\boxed{4}.", R1).answer == "The answer is \\boxed{4}."
    s = split("let me see \\boxed{3}</think>\nThe answer is \\boxed{4}.", R1)
    assert (s.reasoning, s.answer) == ("let me see \\boxed{3}", "The answer is \\boxed{4}.")
    assert split("still thinking \\boxed{3}", R1).answer is None  # never closed: no answer
    plain = ThinkSpec()
    s = split("<think>hm</think>So \\boxed{2}", plain)
    assert (s.reasoning, s.answer) == ("hm", "So \\boxed{2}")
    assert split("<think>a</think>b</think>c", plain).answer == "b</think>c"  # the first close ends the trace
    s = split("hm</think>So \\boxed{2}", plain)  # a server's template opened the trace: the close still ends it
    assert (s.reasoning, s.answer) == ("hm", "So \\boxed{2}")
    assert split("So \\boxed{2}", plain).reasoning is None and split("So \\boxed{2}", None).answer == "So \\boxed{2}"


def test_options_and_detection(tiny_thinking_ckpt, tiny_ckpt):
    from transformers import AutoTokenizer

    assert parse_option("auto") == "auto" and parse_option("<t>,</t>") == ("<t>", "</t>")
    with pytest.raises(ValueError, match="OPEN,CLOSE"):
        parse_option("<t>")
    tok = AutoTokenizer.from_pretrained(tiny_thinking_ckpt)
    prompt = tok.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True)
    assert detect("auto", tok, prompt) == ThinkSpec("<think>", "</think>", True)
    assert detect("auto", AutoTokenizer.from_pretrained(tiny_ckpt), "<|im_start|>assistant\n") is None
    assert detect("none", tok, prompt) is None


def test_an_answer_inside_an_unclosed_trace_is_never_graded():
    """Graded by the real grader: the right answer written inside the trace counts for nothing when the budget
    cut the trace; the same text closed is graded on what follows the trace only."""
    p = Problem("p/0", "What is 2+2?", "4")
    outs = [
        [
            Completion("so it is \\boxed{4} I think", 64, "length"),
            Completion("so it is \\boxed{4}</think>The answer is \\boxed{5}.", 40, "stop"),
            Completion("so it is \\boxed{3}</think>The answer is \\boxed{4}.", 40, "stop"),
            Completion("The answer is \\boxed{4}.", 12, "stop", reasoning="a parser's trace \\boxed{9}"),
            Completion("", 64, "length", reasoning="a parser's trace cut \\boxed{4}"),
        ]
    ]
    recs = _grade_chunk(
        "r",
        [p],
        outs,
        {"p/0": "q"},
        get_template("qwen2-boxed"),
        "math",
        {},
        think=R1,
        count_tokens=lambda c, t: len(t.split()),
    )
    cut, wrong, right, parsed, parsed_cut = recs
    assert (cut["finish_reason"], cut["pred"], cut["correct"]) == ("thinking", None, False)
    assert "inside the thinking trace" in cut["reason"] and cut["reasoning"] == "so it is \\boxed{4} I think"
    assert cut["completion"] == "" and cut["reasoning_tokens"] == 64  # cut inside: every token was the trace
    assert right["reasoning_tokens"] == 4  # closed: counted by the tokenizer (here: words)
    assert (wrong["pred"], wrong["correct"]) == ("5", False)
    assert (right["pred"], right["correct"], right["completion"]) == ("4", True, "The answer is \\boxed{4}.")
    assert (parsed["correct"], parsed["reasoning"]) == (True, "a parser's trace \\boxed{9}")
    assert (parsed_cut["finish_reason"], parsed_cut["correct"]) == ("thinking", False)
    # asked for (--grade-cut-traces): the cut traces are graded on their own text, said so, still counted as cut
    again = _grade_chunk(
        "r", [p], outs, {"p/0": "q"}, get_template("qwen2-boxed"), "math", {}, think=R1, grade_cut=True
    )
    assert [r["correct"] for r in again] == [True, False, True, True, True]
    for r in (again[0], again[4]):
        assert r["finish_reason"] == "thinking" and r["reason"].startswith(CUT_NOTE) and r["pred"] == "4"
    assert [r["reason"] for r in again[1:4]] == [r["reason"] for r in recs[1:4]]


def test_a_reasoning_model_run_on_hf(tiny_thinking_ckpt, shared_data, tmp_path):
    """A tiny checkpoint whose template opens <think> (and whose random text closes it now and then): detected,
    every sample's trace stored apart with its token count, traces the budget cut have no answer and are
    counted, and a closed trace's answer, the text after it, is all that is graded; delimiters named by the
    user (OPEN,CLOSE) split the same way and are recorded."""
    base = ["eval", "--model", str(tiny_thinking_ckpt), "--backend", "hf", "--tasks", "gsm8k", "--limit", "8"]
    base += ["--data-dir", str(shared_data), "--prompt", "deepseek-r1", "--max-tokens", "48"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    (run,) = runs_by_task(tmp_path / "a").values()
    m = run.manifest()
    table = results_table([EvalResult(run, m, "new")])  # the terminal table says how it thought
    heads = [c.header for c in table.columns]
    assert heads[heads.index("mean tokens") + 1 :][:3] == ["thinking tokens", "cut in thinking %", "acc untruncated %"]
    assert m.extra["thinking"] == {"open": "<think>", "close": "</think>", "opened": True}
    rows = run.read_samples()
    assert all(r["prompt"].endswith("<think>\n") for r in rows)
    assert all(r["reasoning"] is not None and "</think>" not in r["reasoning"] for r in rows)
    cut = [r for r in rows if r["finish_reason"] == "thinking"]
    closed = [r for r in rows if r["finish_reason"] != "thinking"]
    assert cut and closed, "the tiny thinking model should both close and overrun its trace"
    assert all(r["pred"] is None and not r["correct"] and r["completion"] == "" for r in cut)
    assert all("inside the thinking trace" in r["reason"] for r in cut)
    for r in closed:  # graded on the answer alone: the stored verdict is the grader's on the post-trace text
        (g,) = grade_batch([r["completion"]], [r["gold"]], "gsm8k", questions=[None])
        assert (r["pred"], r["correct"], r["method"]) == (g.pred, g.correct, g.method)
    for r in rows:  # a trace's tokens, counted by the model's tokenizer, are part of the sample's tokens
        assert 0 < r["reasoning_tokens"] <= r["n_tokens"]
    th = m.metrics["thinking"]
    assert th["truncated_in_thinking"] == len(cut) / len(rows) and th["samples_with_trace"] == len(rows)
    assert th["mean_reasoning_tokens"] == sum(r["reasoning_tokens"] for r in rows) / len(rows)
    assert th["accuracy_untruncated"] == sum(r["correct"] for r in closed) / len(closed)
    assert m.metrics["truncation_rate"] >= th["truncated_in_thinking"]
    # regrade keeps every verdict: a cut trace stays without an answer, or (--grade-cut-traces) graded inside
    for out, extra in ((tmp_path / "a", []), (tmp_path / "g", ["--grade-cut-traces"])):
        if extra:
            assert runner.invoke(app, [*base, *extra, "--out", str(out)]).exit_code == 0
        (r0,) = runs_by_task(out).values()
        before = {(r["problem_id"], r["sample_idx"]): (r["correct"], r["pred"], r["reason"]) for r in r0.read_samples()}
        res = runner.invoke(app, ["regrade", str(r0.path)])
        assert res.exit_code == 0, res.output
        after = {(r["problem_id"], r["sample_idx"]): (r["correct"], r["pred"], r["reason"]) for r in r0.read_samples()}
        assert after == before
        cut_reasons = [r["reason"] for r in r0.read_samples() if r["finish_reason"] == "thinking"]
        assert cut_reasons and all(x.startswith(CUT_NOTE) == bool(extra) for x in cut_reasons)
    # delimiters named by the user: "<think>" opened by the template, "e" closes it (the random text is full of it)
    res = runner.invoke(app, [*base, "--thinking", "<think>,e", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    (run,) = runs_by_task(tmp_path / "b").values()
    assert run.run_id != m.run_id  # the user's delimiters are part of the identity
    assert run.manifest().extra["thinking"] == {"open": "<think>", "close": "e", "opened": True}
    closed = [r for r in run.read_samples() if r["finish_reason"] != "thinking"]
    assert closed and all("e" not in r["reasoning"] for r in closed)


class _Reasoner(BaseHTTPRequestHandler):
    """A chat endpoint shaped like a server with a reasoning parser: SGLang's (and older vLLM's)
    ``reasoning_content`` with a token count, or vLLM 0.32's ``reasoning`` with its 0 count."""

    shape = "sglang"
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        if type(self).shape == "sglang":
            msg = {"role": "assistant", "content": "So \\boxed{4}.", "reasoning_content": "2+2 is 4"}
            usage = {"completion_tokens": 12, "completion_tokens_details": {"reasoning_tokens": 7}}
        else:
            msg = {"role": "assistant", "content": None, "reasoning": "2+2 is"}
            usage = {"completion_tokens": 12, "completion_tokens_details": {"reasoning_tokens": 0}}
        finish = "stop" if type(self).shape == "sglang" else "length"
        out = json.dumps({"choices": [{"message": msg, "finish_reason": finish}], "usage": usage}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("shape", ["sglang", "vllm"])
def test_a_servers_reasoning_field_is_read(shape):
    pytest.importorskip("httpx")
    from stepdpo_bench.samplers.openai import OpenAISampler

    _Reasoner.shape = shape
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Reasoner)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = OpenAISampler("m", [f"http://127.0.0.1:{srv.server_address[1]}/v1"], max_retries=0)
        ((c,),) = s.generate([[{"role": "user", "content": "2+2?"}]], SamplingParams(max_tokens=12))
        assert "chat_template_kwargs" not in _Reasoner.bodies[-1]  # none asked for: none sent
        s.chat_template_kwargs = {"enable_thinking": False}
        s.generate([[{"role": "user", "content": "2+2?"}]], SamplingParams(max_tokens=12))
        assert _Reasoner.bodies[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    finally:
        srv.shutdown()
    if shape == "sglang":
        assert (c.text, c.reasoning, c.reasoning_tokens, c.finish_reason) == ("So \\boxed{4}.", "2+2 is 4", 7, "stop")
    else:  # the trace was cut (no content): a 0 count beside a non-empty trace is no count
        assert (c.text, c.reasoning, c.reasoning_tokens, c.finish_reason) == ("", "2+2 is", None, "length")
        (rec,) = _grade_chunk(
            "r", [Problem("p/0", "2+2?", "4")], [[c]], {"p/0": "q"}, get_template("chat"), "math", {}, think=None
        )
        assert (rec["finish_reason"], rec["reasoning_tokens"], rec["correct"]) == ("thinking", 12, False)


def test_chat_template_kwargs_reach_the_template(tiny_thinking_ckpt, shared_data, tmp_path):
    """Qwen3's switch on a template that honours it: with enable_thinking false the generation prompt holds an
    empty closed trace, nothing is split (the whole completion is the answer), the variables are in the run's
    identity and manifest; bad JSON, a non-object and a plain-text prompt are refused in one line."""
    base = ["eval", "--model", str(tiny_thinking_ckpt), "--backend", "hf", "--tasks", "gsm8k", "--limit", "3"]
    base += ["--data-dir", str(shared_data), "--max-tokens", "16"]
    chat = [*base, "--prompt", "deepseek-r1"]
    off = ["--chat-template-kwargs", '{"enable_thinking": false}']
    res = runner.invoke(app, [*chat, *off, "--out", str(tmp_path / "off")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*chat, "--out", str(tmp_path / "on")])
    assert res.exit_code == 0, res.output
    (run,), (on,) = runs_by_task(tmp_path / "off").values(), runs_by_task(tmp_path / "on").values()
    m = run.manifest()
    assert m.extra["chat_template_kwargs"] == {"enable_thinking": False} and m.extra["thinking"] is None
    assert run.run_id != on.run_id and on.manifest().extra["thinking"]["opened"] is True
    rows = run.read_samples()
    assert all(r["prompt"].endswith("<think>\n\n</think>\n\n") and r["reasoning"] is None for r in rows)
    assert all(r["prompt"].endswith("assistant\n<think>\n") for r in on.read_samples())
    for bad, why in (("{enable", "is not JSON"), ("[1]", "must be a JSON object")):
        res = runner.invoke(app, [*chat, "--chat-template-kwargs", bad, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 2 and why in res.output, res.output
    res = runner.invoke(app, [*base, "--prompt", "qwen2-boxed", *off, "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "plain text" in res.output, res.output
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
