"""The pair pipeline end to end on a tiny SFT'd model and the ``arith`` task, where every step's truth is known:
all stages, the invariants of what they write, resume after a kill, and bad input (no answers, a judge that
hangs or babbles)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.grading import grade
from stepdpo_bench.locators.symbolic import check_step
from stepdpo_bench.runs import read_log
from stepdpo_bench.tasks import arith

from ..helpers import collected_samples, runs_by_task

pytest.importorskip("transformers")
runner = CliRunner()


def _config(tmp_path: Path, policy: Path, **kw) -> Path:
    cfg = {
        "model": str(policy),
        "out": str(tmp_path / "pipe"),
        "limit": 16,
        "k": 4,
        "max_tokens": 48,
        "locators": ["symbolic", "rollout"],
        "rollout_m": 3,
        "rectify_n": 8,
        "chunk_size": 8,
        "verify_chosen": False,
        **kw,
    }  # (the smoke policy reaches answers only by luck)
    f = tmp_path / "pairs.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return f


def test_pipeline_end_to_end(arith_policy, tmp_path):
    f = _config(tmp_path, arith_policy)
    res = runner.invoke(app, ["pairs", "run", "--config", str(f)])
    assert res.exit_code == 0, res.output
    pipe = tmp_path / "pipe"
    funnel = json.loads((pipe / "funnel.json").read_text())
    assert list(funnel) == ["collect", "locate", "rectify", "build"] and "funnel" in res.output
    sols = collected_samples(pipe)
    assert funnel["collect"]["solutions"] == len(sols) == 64
    wrong = {k: s for k, s in sols.items() if not s["correct"] and s["pred"] is not None}
    located = read_log(pipe / "located.jsonl")
    assert sorted((r["key"], r["locator"]) for r in located) == sorted(
        (k, x) for k in wrong for x in ("symbolic", "rollout")
    )
    problems = {p.id: p for p in arith.generate("train", 16).problems}
    exact = n_sym = 0
    for r in located:
        steps = wrong[r["key"]]["steps"]
        if r["locator"] == "symbolic" and r["step"] is not None:
            # the located step's arithmetic is false, and no earlier step's is
            assert check_step(steps[r["step"]]).ok is False
            assert all(check_step(s).ok is not False for s in steps[: r["step"]])
            n_sym += 1
            exact += r["step"] == arith.first_wrong_step(problems[r["problem_id"]], steps)
        if r["locator"] == "rollout":
            assert r["outcome"] in ("located", "unclear") and 3 <= r["spent"] <= 3 * (len(steps).bit_length() + 1)
    assert n_sym and exact / n_sym >= 0.5, (exact, n_sym)
    pairs = [json.loads(x) for x in (pipe / "step_dpo_pairs.jsonl").read_text().splitlines()]
    dpo = [json.loads(x) for x in (pipe / "dpo_pairs.jsonl").read_text().splitlines()]
    assert pairs and funnel["build"]["step-dpo pairs"] == len(pairs) == len(dpo)
    for p in pairs:
        sol = sols[f"{p['problem_id']}#{p['sample_idx']}"]
        assert p["prompt"] == problems[p["problem_id"]].question and p["answer"] == sol["gold"]
        assert p["rejected"] == sol["steps"][p["step_index"]] and p["chosen"] != p["rejected"]
        assert p["initial_reason_steps"] == "".join(s + "\n" for s in sol["steps"][: p["step_index"]])
        # Math-Step-DPO-10K's meaning: full_* continue from the diverging step, after initial_reason_steps
        assert p["full_chosen"].startswith(p["chosen"]) and p["full_rejected"].startswith(p["rejected"])
        assert p["full_rejected"] == "\n".join(sol["steps"][p["step_index"] :])
        assert grade(p["initial_reason_steps"] + p["full_chosen"], p["answer"], "arith").correct
        assert p["locator"] == "symbolic" and p["confidence"] == 1.0 and p["dataset"] == "arith"
    assert {p["problem_id"] for p in pairs} == {d["problem_id"] for d in dpo}
    assert all(grade(d["chosen"], d["answer"], "arith").correct and d["initial_reason_steps"] == "" for d in dpo)
    # the trainer takes both files as they are
    for method, data in (("step-dpo", "step_dpo_pairs.jsonl"), ("dpo", "dpo_pairs.jsonl")):
        res = runner.invoke(
            app,
            [
                "train",
                "--method",
                method,
                "--model",
                str(arith_policy),
                "--data",
                str(pipe / data),
                "--out",
                str(tmp_path / method),
                "--max-steps",
                "2",
                "--batch-size",
                "2",
                "--prompt",
                "arith-step",
            ],
        )
        assert res.exit_code == 0, res.output
    # a rerun redoes nothing
    before = (pipe / "located.jsonl").read_text(), (pipe / "rectified.jsonl").read_text()
    res = runner.invoke(app, ["pairs", "run", "--config", str(f)])
    assert res.exit_code == 0, res.output
    assert ((pipe / "located.jsonl").read_text(), (pipe / "rectified.jsonl").read_text()) == before
    assert json.loads((pipe / "funnel.json").read_text()) == funnel
    # the directory is tied to what was sampled
    res = runner.invoke(app, ["pairs", "build", "--config", str(f), "--set", "k=5"])
    assert res.exit_code == 2 and "built with k=4, not 5" in res.output


def test_greedy_mining_collects_what_eval_generates_greedily(arith_policy, tmp_path):
    """On-policy negatives: with temperature 0 and k 1 the collected solutions are exactly the harness's greedy
    outputs (``eval`` at temperature 0 on the same problems, an independent code path), while rectify samples at
    ``rectify_temperature``: continuations from one prefix differ."""
    f = _config(tmp_path, arith_policy, k=1, temperature=0.0, rectify_temperature=1.0, locators=["symbolic"])
    res = runner.invoke(app, ["pairs", "run", "--config", str(f)])
    assert res.exit_code == 0, res.output
    sols = collected_samples(tmp_path / "pipe")
    assert len(sols) == 16 and {s["sample_idx"] for s in sols.values()} == {0}
    res = runner.invoke(
        app,
        ["eval", "--model", str(arith_policy), "--tasks", "arith", "--split", "train", "--limit", "16",
         "--backend", "hf", "--max-tokens", "48", "--out", str(tmp_path / "results")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    greedy = {s["problem_id"]: s["steps"] for s in runs_by_task(tmp_path / "results")["arith"].read_samples()}
    assert {s["problem_id"]: s["steps"] for s in sols.values()} == greedy
    rows = read_log(tmp_path / "pipe" / "rectified.jsonl")
    assert rows and all(r["tried"] == 8 for r in rows)
    texts = [c["full"] for r in rows for c in r["chosen"]]
    assert any(0 < r["reached_answer"] < r["tried"] for r in rows) or len(set(texts)) > len(rows), rows[:3]


def test_training_file_without_answers_is_a_one_line_error(arith_policy, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "Ava has 2 apples and gets 3. How many?"}) + "\n")
    res = runner.invoke(
        app,
        ["pairs", "collect", "--model", str(arith_policy), "--out", str(tmp_path / "p"), "--set", f"task=jsonl:{data}"],
    )
    assert res.exit_code == 2
    assert f"{data}:1: missing field 'answer'" in res.output and "Traceback" not in res.output


class Judge(BaseHTTPRequestHandler):
    mode: ClassVar[str] = "garbage"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).mode == "hang":
            time.sleep(3)
        msg = {"content": "Interesting question! Numbers are fun."}
        out = json.dumps({"choices": [{"message": msg, "finish_reason": "stop"}], "usage": {}}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_judge_that_hangs_or_babbles(arith_policy, tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        f = _config(
            tmp_path,
            arith_policy,
            limit=6,
            locators=["symbolic", "judge"],
            judge_model="j",
            judge_base_urls=[url],
            judge_timeout=0.5,
            judge_retries=0,
        )
        assert runner.invoke(app, ["pairs", "collect", "--config", str(f)]).exit_code == 0
        Judge.mode = "hang"
        res = runner.invoke(app, ["pairs", "locate", "--config", str(f)])
        assert res.exit_code == 2 and "judge 'j' failed" in res.output and "rerun" in res.output
        kept = read_log(tmp_path / "pipe" / "located.jsonl")
        assert kept and {r["locator"] for r in kept} == {"symbolic"}  # what finished before the judge is kept
        Judge.mode = "garbage"
        res = runner.invoke(app, ["pairs", "locate", "--config", str(f)])
        assert res.exit_code == 0, res.output
        funnel = json.loads((tmp_path / "pipe" / "funnel.json").read_text())["locate"]
        judged = [r for r in read_log(tmp_path / "pipe" / "located.jsonl") if r["locator"] == "judge"]
        assert funnel["judge: unparseable"] == len(judged) == len(kept) and funnel["judge: located"] == 0
        assert all(r["step"] is None and "Numbers are fun" in r["evidence"] for r in judged)
    finally:
        srv.shutdown()
        Judge.mode = "garbage"
