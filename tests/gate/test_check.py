"""The CI gate on runs produced by the real harness, with controlled perturbations of their sample files.

Random tiny models answer nothing, so correctness flags are set on purpose (``_with_correct``): the baseline is
right on a known set of problems and each candidate differs by a known number of broken / fixed problems, which
gives exact expectations computed here independently (``reference.py``: the score interval by numeric
maximisation and root finding).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.contracts import samples_link
from stepdpo_bench.gate import stratified_ids
from stepdpo_bench.runs import RunDir

from . import reference as ref

runner = CliRunner()
N = 200


def _with_correct(src: RunDir, dst: Path, right: set[int], method: str = "step-dpo") -> RunDir:
    """A copy of ``src`` as a new run whose sample i is correct iff i is in ``right``."""
    shutil.copytree(src.path, dst)
    run = RunDir(dst)
    rows = run.read_samples()
    for r in rows:
        r["run_id"] = dst.name
        r["correct"] = int(r["problem_id"].rsplit("/", 1)[1]) in right
    run.compact(rows)
    (dst / "samples.jsonl").unlink(missing_ok=True)
    m = run.manifest()
    m.run_id = dst.name
    m.model.method = method
    run.write_manifest(m)
    return run


@pytest.fixture(scope="module")
def real_run(tiny_ckpt, tmp_path_factory) -> RunDir:
    out = tmp_path_factory.mktemp("gate") / "harness"
    args = [
        "eval",
        "--model",
        str(tiny_ckpt),
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        str(N),
        "--max-tokens",
        "4",
        "--batch-size",
        "32",
        "--method",
        "sft",
        "--out",
        str(out),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (d,) = list(out.iterdir())
    return RunDir(d)


@pytest.fixture
def results(real_run, tmp_path) -> Path:
    r = tmp_path / "results"
    r.mkdir()
    _with_correct(real_run, r / "base", set(range(0, N, 2)), method="sft")  # 50%
    return r


def _check(results: Path, *args: str):
    return runner.invoke(app, ["check", "--results", str(results), "--baseline", "base", *args])


def test_identical_runs_pass_only_when_the_interval_is_inside_the_margin(results):
    _with_correct(RunDir(results / "base"), results / "same", set(range(0, N, 2)))
    res = _check(results, "--candidate", "same", "--max-drop", "3")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("PASS arith")
    # 200 problems that all agree cannot prove a drop under 1 point (95% CI about +-1.9): inconclusive, not pass
    res = _check(results, "--candidate", "same", "--max-drop", "1")
    assert res.exit_code == 3 and "about" in res.stdout, res.output


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 7, 8, 10, 16, 30])
@pytest.mark.parametrize("margin", [1.0, 3.0])
def test_k_broken_problems_get_the_verdict_the_interval_gives(results, k, margin):
    right = set(range(0, N, 2))
    broken = set(sorted(right)[:k])
    _with_correct(RunDir(results / "base"), results / "cand", right - broken)
    res = _check(results, "--candidate", "cand", "--max-drop", str(margin), "--alpha", "0.05")
    lo, hi = ref.tango_ci(0, k, N, 0.95)
    want = 0 if lo > -margin / 100 else 1 if hi < -margin / 100 else 3
    assert res.exit_code == want, (k, margin, lo, hi, res.stdout)


def test_mismatched_prompt_is_refused_unless_allowed(results):
    cand = _with_correct(RunDir(results / "base"), results / "cand", set(range(0, N, 2)))
    m = cand.manifest()
    m.prompt.fingerprint = m.identity["prompt"]["fingerprint"] = "0123456789abcdef"
    cand.write_manifest(m)
    res = _check(results, "--candidate", "cand")
    assert res.exit_code == 2 and "not comparable (prompt: " in res.stderr
    res = _check(results, "--candidate", "cand", "--allow-mismatch", "--max-drop", "3")
    assert res.exit_code == 0
    res = _check(results, "--candidate", "cand", "--allow-mismatch", "--min-problems", "500")
    assert res.exit_code == 2 and "--min-problems 500" in res.stderr


def test_latest_query_reports_and_exit_codes(results, tmp_path):
    right = set(range(0, N, 2))
    _with_correct(RunDir(results / "base"), results / "cand", right - set(sorted(right)[:20]) | {1})
    md, js, xml = tmp_path / "r.md", tmp_path / "r.json", tmp_path / "r.xml"
    res = runner.invoke(
        app,
        [
            "check",
            "--results",
            str(results),
            "--baseline",
            "latest:tag=sft",
            "--candidate",
            "cand",
            "--markdown",
            str(md),
            "--json",
            str(js),
            "--junit",
            str(xml),
            "--app-url",
            "http://127.0.0.1:8501",
        ],
    )
    assert res.exit_code == 1, res.output
    report = json.loads(js.read_text())
    assert report["verdict"] == "fail" and report["tasks"][0]["baseline"] == "base"
    t = report["tasks"][0]
    assert len(t["broken"]) == 20 and t["fixed"] == ["arith/test/1"]
    assert t["ci"] == pytest.approx(list(ref.tango_ci(1, 20, N, 0.95)), abs=1e-6)
    assert t["p_value"] == pytest.approx(norm.cdf(ref.score(1, 20, N, -0.01)), rel=1e-4)  # H0: drop <= 1 point
    text = md.read_text()
    assert "## stepdpo-bench check: **FAIL**" in text and "| arith | fail |" in text
    assert f"({samples_link('http://127.0.0.1:8501', 'base', 'cand', 'arith/test/0')})" in text
    assert "?page=Samples&a=base&b=cand&problem=arith%2Ftest%2F0" in text  # the app's deep-link format
    assert '<failure message="the 95% CI lies below -1 points' in xml.read_text() and 'failures="1"' in xml.read_text()
    # a small, noisy drop: inconclusive (exit 3, or 0 with --inconclusive-ok), with the problems needed
    _with_correct(RunDir(results / "base"), results / "noisy", right - set(sorted(right)[:3]))
    res = _check(results, "--candidate", "noisy")
    assert res.exit_code == 3 and "INCONCLUSIVE" in res.stdout and "problems would decide" in res.stdout
    assert _check(results, "--candidate", "noisy", "--inconclusive-ok").exit_code == 0
    assert _check(results, "--candidate", "nope").exit_code == 2


def test_subject_bound_and_several_tasks(results):
    # all arith subjects are "2-step"/"3-step": break 12 problems of one subject only
    base = RunDir(results / "base")
    rows = base.read_samples()
    two = sorted(int(r["problem_id"].rsplit("/", 1)[1]) for r in rows if r["subject"] == "2-step")
    right = set(range(0, N, 2))
    lost = set([i for i in two if i in right][:12])
    gained = set([i for i in range(1, N, 2) if i not in two][:10])  # fixed elsewhere: overall about -1 point
    _with_correct(base, results / "cand", right - lost | gained)
    plain = _check(results, "--candidate", "cand", "--max-drop", "5")
    assert plain.exit_code in (0, 3), plain.output  # overall about -1 point: within a 5-point margin
    bounded = _check(results, "--candidate", "cand", "--max-drop", "5", "--max-subject-drop", "3")
    assert bounded.exit_code == 1 and "(Holm over 2 subjects): 2-step" in bounded.stdout
    multi = _check(
        results, "--candidate", "cand", "--task", "arith,arith", "--max-drop", "5", "--json", str(results / "m.json")
    )
    assert json.loads((results / "m.json").read_text())["tasks"][0]["alpha"] == pytest.approx(0.025)
    assert multi.exit_code in (0, 3)


def test_stratified_escalation_evaluates_the_full_set_only_when_needed(real_run, tiny_ckpt, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    subset = stratified_ids(real_run.read_samples(), 20)
    sub_idx = {int(p.rsplit("/", 1)[1]) for p in subset}
    # the real candidate answers nothing; a baseline right on 1 subset problem and 2 others stays undecided
    # on the subset (1 broken of 20) and on the full set (3 of 200): both stages run
    outside = sorted(set(range(N)) - sub_idx)[:2]
    _with_correct(real_run, results / "base", {min(sub_idx), *outside})
    args = [
        "check",
        "--results",
        str(results),
        "--baseline",
        "base",
        "--candidate-model",
        str(tiny_ckpt),
        "--stratified-subset",
        "20",
        "--backend",
        "hf",
        "--min-problems",
        "10",
        "--json",
        str(tmp_path / "e.json"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 3, res.output
    assert f"look 1, {len(subset)} problems" in res.stderr and f"look 2, {N} problems" in res.stderr
    report = json.loads((tmp_path / "e.json").read_text())["tasks"][0]
    assert report["n"] == N and [st["problems"] for st in report["stages"]] == [len(subset), N]
    interim, final = (st["tail"] for st in report["stages"])
    assert interim == pytest.approx(0.025 * math.log(1 + (math.e - 1) * len(subset) / N))  # Pocock-type spending
    assert 0.02 < final < 0.025
    # a candidate that breaks every subset problem is decided on the subset alone: no full-set run is made
    results2 = tmp_path / "results2"
    results2.mkdir()
    _with_correct(real_run, results2 / "base", set(range(N)))
    res = runner.invoke(app, [*args[:2], str(results2), *args[3:]])
    assert res.exit_code == 1, res.output
    assert f"look 1, {len(subset)} problems" in res.stderr and "-> fail" in res.stderr and "look 2" not in res.stderr
    assert len([d for d in results2.iterdir() if (d / "run.json").exists()]) == 2


@pytest.mark.parametrize("n", [1, 4, 7, 35, 100, 499, 500, 900])
def test_stratified_subset_has_exactly_n_problems_in_proportion(shared_data, n):
    """MATH-500 has 35 (subject, level) strata: N means N (the old rule gave 7 for N = 4), each stratum gets its
    share rounded by largest remainder, and the draw is the same for the same seed."""
    from stepdpo_bench.tasks import load_task

    task = load_task("math500", shared_data)
    samples = [{"problem_id": p.id, "subject": p.subject, "level": p.level} for p in task.problems]
    ids = stratified_ids(samples, n, seed=3)
    assert len(ids) == len(set(ids)) == min(n, 500)
    assert ids == stratified_ids(samples, n, seed=3)
    size: dict[tuple, int] = {}
    got: dict[tuple, int] = {}
    chosen = set(ids)
    for s in samples:
        key = (s["subject"], s["level"])
        size[key] = size.get(key, 0) + 1
        got[key] = got.get(key, 0) + (s["problem_id"] in chosen)
    for key, k in size.items():  # within one of the exact proportional share
        assert abs(got[key] - min(n, 500) * k / 500) < 1, (key, got[key], k)
