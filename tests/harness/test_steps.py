"""Step-level evaluation: the locators' per-step verdicts against truths we did not write (arith's generator,
GSM8K's own ``<<a=b>>`` annotations), the step metrics against an independent cluster bootstrap, and
``stepdpo-bench steps`` / ``eval --locate`` end to end on real hf runs (resume after kill -9, bad input)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.locators import CORRECT, UNCHECKED, WRONG, exact, symbolic
from stepdpo_bench.locators.judge import read_steps
from stepdpo_bench.locators.symbolic import check_step
from stepdpo_bench.runs import RunDir, read_log
from stepdpo_bench.step_metrics import SolutionSteps, compare_steps, per_problem, step_metrics
from stepdpo_bench.tasks import arith

runner = CliRunner()
_EQ = re.compile(r"(-?\d+) ([-+*]) (-?\d+) = (-?\d+)")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _chain(p, start_at: int, delta: int) -> list[str]:
    """The problem's solution with step ``start_at``'s result off by ``delta`` and every later step computed,
    correctly, from the value carried forward; the final answer is the one the steps give."""
    truth = [_EQ.search(s).groups() for s in p.steps]
    out, running = [], int(truth[0][0])
    for k, (_a, op, b, _c) in enumerate(truth):
        c = _OPS[op](running, int(b)) + (delta if k == start_at else 0)
        out.append(f"Step {k + 1}: {running} {op} {b} = {c}")
        running = c
    out[-1] += f"\nThe answer is: {running}"
    return out


def test_exact_verdicts_agree_with_the_generators_truth():
    rng = random.Random(0)
    problems = arith.generate("test", n=300).problems
    for p in problems:
        gold = _chain(p, -1, 0)
        v = exact.verdicts(p, gold)
        assert v.verdicts == [CORRECT] * len(gold) and v.first_wrong is None and arith.first_wrong_step(p, gold) is None
        k = rng.randrange(len(p.steps))
        sol = _chain(p, k, rng.choice((-2, -1, 1, 3)))
        v = exact.verdicts(p, sol)
        assert v.first_wrong == k == arith.first_wrong_step(p, sol)
        # before the error: right; the error: wrong; after it: right again, judged from the value carried forward
        assert v.verdicts == [CORRECT] * k + [WRONG] + [CORRECT] * (len(sol) - k - 1), (sol, v)
        # a true equation on the wrong operand: symbolic cannot see it, exact can
        truth = _EQ.search(p.steps[0]).groups()
        wrong_b = int(truth[2]) + 1
        first = f"Step 1: {truth[0]} {truth[1]} {wrong_b} = {_OPS[truth[1]](int(truth[0]), wrong_b)}"
        sol2 = [first, *gold[1:]]
        assert exact.verdicts(p, sol2).first_wrong == 0 == arith.first_wrong_step(p, sol2)
        assert symbolic.verdicts(sol2).verdicts[0] == CORRECT
        # stopping early: the last step written concluded too soon
        if len(gold) > 1:
            short = [*gold[:1]]
            short[0] += "\nThe answer is: 0"
            assert exact.verdicts(p, short).first_wrong == 0 == arith.first_wrong_step(p, short)


def test_symbolic_verdicts_on_gsm8k_gold_annotations(shared_data):
    """Every checkable ``<<a=b>>`` annotation of GSM8K's gold solutions (test and train, written by the dataset's
    authors) verifies as correct; each one with its result moved by 1 is wrong; and the parser can read
    nearly all of them.  (The gold *text* has real slips the annotations do not, "8*3 = <<80*3=240>>240":
    bench/steps.py counts what the locator says of whole gold steps.)"""
    ann = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
    checked = total = 0
    for split in ("test", "train"):
        for line in (shared_data / "gsm8k" / f"{split}.jsonl").open():
            for step in json.loads(line)["answer"].split("\n"):
                found = ann.findall(step)
                if not found:
                    continue
                total += len(found)
                for expr, claimed in found:
                    res = check_step(f"<<{expr}={claimed}>>")
                    assert res.ok is not False, (step, res.equations)
                    if not res.ok:
                        continue
                    checked += 1
                    try:
                        moved = f"<<{expr}={Decimal(claimed.replace(',', '').replace('$', '')) + 1}>>"
                    except InvalidOperation:
                        continue
                    assert check_step(moved).ok is False, moved
    assert total > 25_000 and checked / total > 0.95, (checked, total)


def test_judge_replies_as_step_verdicts():
    r = read_steps("Step 1: correct\nStep 2: neutral\nStep 3: incorrect\nStep 4: correct", 5)
    assert r.verdicts == [CORRECT, CORRECT, WRONG, UNCHECKED, UNCHECKED] and r.first_wrong == 2
    assert read_steps("All steps are correct.", 3).verdicts == [CORRECT] * 3
    assert read_steps("Nice problem!", 2).outcome == "unparseable"
    assert read_steps("Step 7: incorrect", 3).outcome == "invalid"
    r = read_steps("Step 1: correct\nStep 2: incorrect\nThe first incorrect step is Step 1", 3)
    assert r.outcome == "invalid"  # a reply that contradicts itself is counted, not believed


def _bootstrap(sols, metric_fn, reps=4000, seed=0):
    """An independent check of the clustered intervals: resample whole problems with replacement."""
    rng = np.random.default_rng(seed)
    by: dict[str, list] = {}
    for s in sols:
        by.setdefault(s.problem_id, []).append(s)
    keys = list(by)
    vals = []
    for _ in range(reps):
        pick = rng.integers(0, len(keys), len(keys))
        draw = [SolutionSteps(f"{j}", s.sample_idx, s.correct, s.verdicts, s.first_wrong, s.outcome)
                for j, i in enumerate(pick) for s in by[keys[i]]]  # fmt: skip
        v = metric_fn(draw)
        if v is not None:
            vals.append(v)
    return np.percentile(vals, [2.5, 97.5])


def _synthetic(n_problems=120, k=8, seed=1):
    """Problems of varying difficulty, k samples each: correlated within a problem, as real runs are."""
    rng = random.Random(seed)
    sols = []
    for i in range(n_problems):
        p_err = rng.random() * 0.6
        for j in range(k):
            n = rng.randint(2, 5)
            first = next((t for t in range(n) if rng.random() < p_err / 2), None)
            v = [CORRECT if (first is None or t < first) else (WRONG if t == first else UNCHECKED) for t in range(n)]
            if rng.random() < 0.1:
                v[0] = UNCHECKED if first != 0 else v[0]
            correct = (first is None and rng.random() < 0.95) or (first is not None and rng.random() < 0.15)
            sols.append(SolutionSteps(f"p{i}", j, correct, v, first, "checked"))
    return sols


def test_step_metrics_by_hand_and_against_a_cluster_bootstrap():
    sols = [
        SolutionSteps("a", 0, True, [CORRECT, WRONG, UNCHECKED], 1, "checked"),
        SolutionSteps("a", 1, True, [CORRECT, CORRECT], None, "checked"),
        SolutionSteps("b", 0, False, [CORRECT, CORRECT, CORRECT], None, "checked"),
        SolutionSteps("b", 1, False, [WRONG, UNCHECKED], 0, "checked"),
        SolutionSteps("c", 0, None, [UNCHECKED], None, "nothing checkable"),
    ]
    m = step_metrics(sols)
    assert m["step_accuracy"]["value"] == pytest.approx(6 / 8)
    assert m["checkable"]["value"] == pytest.approx(8 / 11)
    assert m["right_for_wrong_reasons"]["value"] == pytest.approx(1 / 2)
    assert m["wrong_steps_all_correct"]["value"] == pytest.approx(1 / 2)
    assert m["first_error_step"]["value"] == pytest.approx((2 + 1) / 2)
    assert m["first_error_relative"]["value"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert [b["value"] for b in m["first_error_hist"]] == [0.5, 0.5]
    assert m["counts"]["outcomes"] == {"checked": 4, "nothing checkable": 1}

    big = _synthetic()
    m = step_metrics(big)
    for key, fn in (
        ("step_accuracy", lambda d: step_metrics(d)["step_accuracy"]["value"]),
        ("first_error_step", lambda d: step_metrics(d)["first_error_step"]["value"]),
        ("right_for_wrong_reasons", lambda d: step_metrics(d)["right_for_wrong_reasons"]["value"]),
    ):
        lo, hi = m[key]["ci95"]
        blo, bhi = _bootstrap(big, fn, reps=300)
        width, bwidth = hi - lo, bhi - blo
        assert 0.75 < width / bwidth < 1.33, (key, (lo, hi), (blo, bhi))  # same uncertainty, by another road


def test_paired_step_comparison_sees_a_real_difference_and_not_a_fake_one():
    a = _synthetic(seed=1)
    same = [SolutionSteps(s.problem_id, s.sample_idx, s.correct, list(s.verdicts), s.first_wrong, s.outcome)
            for s in a]  # fmt: skip
    rows = {r["metric"]: r for r in compare_steps(a, same)}
    assert rows["step_accuracy"]["diff"] == 0 and rows["step_accuracy"]["p"] > 0.5
    # b: the same problems with a quarter of the errors repaired (each step from the first error on made right)
    rng = random.Random(2)
    b = []
    for s in a:
        if s.first_wrong is not None and rng.random() < 0.25:
            b.append(SolutionSteps(s.problem_id, s.sample_idx, True, [CORRECT] * len(s.verdicts), None, s.outcome))
        else:
            b.append(s)
    rows = {r["metric"]: r for r in compare_steps(a, b)}
    d = rows["step_accuracy"]
    assert d["diff"] > 0 and d["ci95"][0] > 0 and d["p"] < 0.01
    pa, pb = per_problem(a, "step_accuracy"), per_problem(b, "step_accuracy")
    assert d["diff"] == pytest.approx(np.mean([pb[k] - pa[k] for k in pa]))


def _eval(model: Path, out: Path, *extra: str) -> Path:
    res = runner.invoke(
        app, ["eval", "--model", str(model), "--backend", "hf", "--tasks", "arith", "--out", str(out), *extra]
    )
    assert res.exit_code == 0, res.output
    return next(d for d in out.iterdir() if (d / "run.json").is_file())


def test_steps_on_an_hf_arith_run_equal_the_exact_truth_and_reach_the_index(arith_policy, tmp_path):
    out = tmp_path / "r"
    run = _eval(arith_policy, out, "--limit", "40", "--locate", "exact")
    summary = json.loads(next((run / "steps").glob("exact-*/summary.json")).read_text())
    samples = RunDir(run).read_samples()
    problems = {p.id: p for p in arith.generate("test").problems}
    truth = [arith.first_wrong_step(problems[s["problem_id"]], list(s["steps"])) for s in samples]
    with_error = [t for t in truth if t is not None]
    m = summary["metrics"]
    assert m["counts"]["solutions"] == 40 and with_error  # the smoke policy errs: there is something to see
    assert m["solutions_with_error"]["value"] == pytest.approx(len(with_error) / 40)
    assert m["first_error_step"]["value"] == pytest.approx(np.mean([t + 1 for t in with_error]))
    # symbolic too, by `steps`; then both in the index and on the leaderboard (exact preferred)
    res = runner.invoke(app, ["steps", str(run), "--locator", "symbolic", "--out", str(out)])
    assert res.exit_code == 0 and "symbolic" in res.output, res.output
    assert runner.invoke(app, ["ingest", str(out)]).exit_code == 0
    import duckdb

    con = duckdb.connect(str(out / "leaderboard.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT locator) FROM step_verdicts").fetchone() == (80, 2)
    firsts = dict(
        con.execute(
            "SELECT problem_id, first_wrong FROM step_verdicts WHERE locator = 'exact' AND sample_idx = 0"
        ).fetchall()
    )
    assert firsts == {s["problem_id"]: t for s, t in zip(samples, truth, strict=True)}
    con.close()
    res = runner.invoke(app, ["leaderboard", "--results", str(out), "--format", "json"])
    row = json.loads(res.output)[0]
    assert row["steps_locator"] == "exact" and row["step_accuracy"] == pytest.approx(m["step_accuracy"]["value"], 1e-5)
    # unchanged verdicts: a second `steps` call judges nothing and the index does not reload the run
    res = runner.invoke(app, ["steps", str(run), "--locator", "exact", "--out", str(out)])
    assert res.exit_code == 0
    res = runner.invoke(app, ["ingest", str(out)])
    assert "0 added, 0 replaced, 1 unchanged" in res.output


def test_steps_bad_input_is_one_line(arith_policy, tmp_path):
    out = tmp_path / "r"
    run = _eval(arith_policy, out, "--limit", "4")
    cases = [
        (["steps", str(run), "--locator", "rollout"], "choose one of exact, symbolic, judge"),
        (["steps", str(run), "--locator", "judge"], "needs --judge-model and --judge-base-url"),
        (["steps", str(tmp_path / "nope"), "--locator", "symbolic"], "no run found"),
        (["steps", str(tmp_path), "--locator", "symbolic"], "no runs in it"),
    ]
    for args, msg in cases:
        res = runner.invoke(app, [*args, "--out", str(out)])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, (args, res.output)
    # a run of another task: exact refuses, naming the run and what to use instead
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps({"question": f"{i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(3)))
    res = runner.invoke(
        app,
        ["eval", "--model", str(arith_policy), "--backend", "hf", "--tasks", f"jsonl:{jsonl}", "--max-tokens", "8",
         "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    other = next(d for d in out.iterdir() if "jsonl" in d.name or "t.jsonl" in d.name or (d != run and d.is_dir()))
    res = runner.invoke(app, ["steps", str(other), "--locator", "exact", "--out", str(out)])
    assert res.exit_code == 2 and "use --locator symbolic or judge" in res.output
    assert not (other / "steps").exists()  # refused before anything was written
    # a corrupt verdicts file is skipped by ingest with a warning naming it; the other runs are indexed
    res = runner.invoke(app, ["steps", str(run), "--locator", "symbolic", "--out", str(out)])
    assert res.exit_code == 0
    log = next((run / "steps").glob("symbolic-*/verdicts.jsonl"))
    log.write_text(log.read_text().replace('"verdicts"', '"verdict"', 1))
    res = runner.invoke(app, ["ingest", str(out)])
    assert res.exit_code == 0 and "is not a step verdict" in res.output and "1 added" in res.output


class SlowJudge(BaseHTTPRequestHandler):
    """A judge that checks each step's arithmetic (so its verdicts are known) and takes its time."""

    calls: ClassVar[list[str]] = []
    delay: ClassVar[float] = 0.15

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        type(self).calls.append(prompt.split("## Problem\n", 1)[1].split("\n", 1)[0])
        time.sleep(type(self).delay)
        student = prompt.split("## Student's solution", 1)[1].split("## Your task", 1)[0]
        lines = []
        for m in re.finditer(r"^Step (\d+): (.*)$", student, re.M):
            ok = check_step(m.group(2)).ok
            lines.append(f"Step {m.group(1)}: {'incorrect' if ok is False else 'correct'}")
            if ok is False:
                break
        out = json.dumps(
            {"choices": [{"message": {"content": "\n".join(lines)}, "finish_reason": "stop"}], "usage": {}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_steps_with_a_judge_resume_after_kill_9(arith_policy, tmp_path):
    out = tmp_path / "r"
    run = _eval(arith_policy, out, "--limit", "24")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), SlowJudge)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    args = ["steps", str(run), "--locator", "judge", "--judge-model", "j", "--judge-base-url", url]
    args += ["--chunk-size", "4", "--out", str(out)]
    env = {**os.environ, "STEPDPO_JUDGE_API_KEY": "x"}
    try:
        SlowJudge.calls.clear()
        proc = subprocess.Popen([sys.executable, "-m", "stepdpo_bench.cli", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        log = None
        deadline = time.time() + 120
        while time.time() < deadline:
            found = list((run / "steps").glob("judge-*/verdicts.jsonl")) if (run / "steps").exists() else []
            if found and len(read_log(found[0])) >= 8:
                log = found[0]
                break
            time.sleep(0.05)
        assert log is not None, "the judge run never saved a chunk"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kept = read_log(log)
        assert 8 <= len(kept) < 24 and not (log.parent / "summary.json").exists()
        before = len(SlowJudge.calls)
        res = runner.invoke(app, args, env=env)
        assert res.exit_code == 0, res.output
        rows = read_log(log)
        keys = [(r["problem_id"], r["sample_idx"]) for r in rows]
        assert len(keys) == len(set(keys)) == 24  # nothing duplicated, nothing lost
        assert len(SlowJudge.calls) - before == 24 - len(kept)  # only what was missing was asked again
        # the judge's verdicts are what it said: here the symbolic checker's, so the two agree step for step
        res = runner.invoke(app, ["steps", str(run), "--locator", "symbolic", "--out", str(out)])
        sym = {
            (r["problem_id"], r["sample_idx"]): r
            for r in read_log(next((run / "steps").glob("symbolic-*/verdicts.jsonl")))
        }
        for r in rows:
            s = sym[(r["problem_id"], r["sample_idx"])]
            assert r["first_wrong"] == s["first_wrong"]
    finally:
        srv.shutdown()


def test_steps_on_an_hf_gsm8k_run(arith_policy, shared_data, tmp_path):
    """GSM8K through the same path: symbolic verdicts for every sample, exact refused at the door."""
    out = tmp_path / "r"
    base = ["eval", "--model", str(arith_policy), "--backend", "hf", "--tasks", "gsm8k", "--limit", "6"]
    base += ["--data-dir", str(shared_data), "--prompt", "arith-step", "--max-tokens", "48", "--out", str(out)]
    res = runner.invoke(app, [*base, "--locate", "exact"])
    assert res.exit_code == 2 and "only arith has" in res.output
    res = runner.invoke(app, [*base, "--locate", "symbolic"])
    assert res.exit_code == 0, res.output
    (run,) = [d for d in out.iterdir() if (d / "run.json").is_file()]
    summary = json.loads(next((run / "steps").glob("symbolic-*/summary.json")).read_text())
    assert summary["metrics"]["counts"]["solutions"] == 6
    rows = read_log(next((run / "steps").glob("symbolic-*/verdicts.jsonl")))
    samples = {(s["problem_id"], s["sample_idx"]): s for s in RunDir(run).read_samples()}
    for r in rows:  # each verdict is the locator's on that sample's own steps
        assert r["verdicts"] == symbolic.verdicts(list(samples[(r["problem_id"], r["sample_idx"])]["steps"])).verdicts
