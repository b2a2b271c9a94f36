"""Bounds of grader 2.0: explosive answers decided without sympy, identical pairs compared once (timeouts too),
a batch's overall time budget, and grading workers that die with the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from stepdpo_bench.grading import grade_batch, is_equivalent_batch
from stepdpo_bench.grading.equivalence import compare
from stepdpo_bench.grading.isolation import GraderPool

SLOW = r"\sum_{k=1}^{1000} k^{k^{2}}"  # no textual sign of size, yet sympy would work on it for minutes


class CountingPool(GraderPool):
    """A real pool that records what it was asked to compute."""

    def __init__(self) -> None:
        super().__init__(size=2)
        self.sent: list[dict] = []

    def map(self, payloads, timeout=None, on_result=None, budget=None):
        self.sent += list(payloads)
        return super().map(payloads, timeout, on_result, budget)


def test_explosive_answers_are_decided_in_the_fast_path():
    for bomb in (r"10^{10^{10^{10}}}", r"x^{x^{x^{x}}}", "9!!!!!!!!", "(10!)!", r"2^{2^{40}}", r"\sum_{k=1}^{10^{6}}k"):
        t0 = time.perf_counter()
        v = compare(bomb, "5")  # no worker, no sympy
        assert v is not None and not v and "too large" in v.reason, bomb
        assert time.perf_counter() - t0 < 0.5


def test_a_batch_sends_each_distinct_pair_once_and_remembers_timeouts():
    completions = [f"The answer is $\\boxed{{{i % 7}}}$." for i in range(1980)]
    completions += [f"so $\\boxed{{{SLOW}}}$"] * 10 + [f"so $\\boxed{{{SLOW}+1}}$"] * 10
    golds = [str(i % 5) for i in range(1980)] + ["3"] * 20  # e.g. n=10 samples of two problems with one gold
    pool = CountingPool()
    try:
        from stepdpo_bench import grading

        original = grading.shared_pool
        grading.shared_pool = lambda: pool  # the batch below runs through the counting pool
        try:
            grades = grade_batch(completions, golds, "math", timeout=1.0)
            again = grade_batch(completions[-20:], golds[-20:], "math", timeout=1.0)
        finally:
            grading.shared_pool = original
    finally:
        pool.close()
    assert len(grades) == 2000 and sum(g.correct for g in grades[:1980]) == sum(i % 7 == i % 5 for i in range(1980))
    slow = [p for p in pool.sent if "1000" in p["pred"]]
    assert len(slow) == 2  # 20 pathological samples, two distinct strings: two comparisons, no more
    assert all("timeout" in g.reason for g in grades[1980:]) and all("timeout" in g.reason for g in again)
    assert len([p for p in pool.sent if "1000" in p["pred"]]) == 2  # the rerun was answered from the cache


def test_the_batch_budget_bounds_the_whole_call():
    pool = GraderPool(size=2)
    try:
        pairs = [(f"{SLOW}+{i}", "3") for i in range(6)]
        t0 = time.monotonic()
        verdicts = is_equivalent_batch(pairs, "math", timeout=30.0, pool=pool, budget=2.0)
        wall = time.monotonic() - t0
    finally:
        pool.close()
    assert wall < 10  # not 6 x 30 s: the budget ended the call
    assert all(not v and "budget" in v.reason for v in verdicts), [v.reason for v in verdicts]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_when_their_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(
        textwrap.dedent(f"""
        import threading, time, sys
        from stepdpo_bench.grading.isolation import GraderPool
        pool = GraderPool(size=2)
        def work():  # started from a short-lived thread: the workers must not die with it, only with us
            pool.map([{{"pred": {SLOW!r} + "+" + str(i), "gold": "3", "task": "math"}} for i in range(2)], 600)
        threading.Thread(target=work, daemon=True).start()
        while len(pool._workers) < 2 or not all(w.job is not None for w in pool._workers):
            time.sleep(0.05)
        print(" ".join(str(w.proc.pid) for w in pool._workers), flush=True)
        time.sleep(600)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        time.sleep(1.0)
        assert all(_alive(p) for p in pids)  # busy on the slow comparison
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "a grading worker outlived its caller"
    finally:
        if proc.poll() is None:
            proc.kill()
