"""The CI gate on runs produced by the real harness, with controlled perturbations of their sample files.

Random tiny models answer nothing, so correctness flags are set on purpose (``_with_correct``): the baseline is
right on a known set of problems and each candidate differs by a known number of broken / fixed problems, which
gives exact expectations computed here independently with scipy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.contracts import samples_link
from stepdpo_bench.gate import stratified_ids
from stepdpo_bench.runs import RunDir

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


def test_identical_runs_pass(results):
    _with_correct(RunDir(results / "base"), results / "same", set(range(0, N, 2)))
    res = _check(results, "--candidate", "same")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("PASS arith")


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 7, 8, 10, 16])
def test_k_broken_problems_fail_exactly_when_the_statistics_say_so(results, k):
    right = set(range(0, N, 2))
    broken = set(sorted(right)[:k])
    _with_correct(RunDir(results / "base"), results / "cand", right - broken)
    res = _check(results, "--candidate", "cand", "--max-drop", "1.0", "--alpha", "0.05")
    drop = k / N
    p = binomtest(0, k, 0.5).pvalue if k else 1.0
    should_fail = drop > 0.01 and p < 0.05
    assert (res.exit_code == 1) == should_fail, (k, res.stdout)
    if not should_fail:
        assert res.exit_code in (0, 3), res.output
    if k == 0:
        assert res.exit_code == 0


def test_mismatched_prompt_is_refused_unless_allowed(results):
    cand = _with_correct(RunDir(results / "base"), results / "cand", set(range(0, N, 2)))
    m = cand.manifest()
    m.prompt.fingerprint = m.identity["prompt"]["fingerprint"] = "0123456789abcdef"
    cand.write_manifest(m)
    res = _check(results, "--candidate", "cand")
    assert res.exit_code == 2 and "not comparable (prompt: " in res.stderr
    res = _check(results, "--candidate", "cand", "--allow-mismatch")
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
    assert t["p_value"] == pytest.approx(binomtest(1, 21, 0.5).pvalue)
    text = md.read_text()
    assert "## stepdpo-bench check: **FAIL**" in text and "| arith | fail |" in text
    assert f"({samples_link('http://127.0.0.1:8501', 'base', 'cand', 'arith/test/0')})" in text
    assert "?page=Samples&a=base&b=cand&problem=arith%2Ftest%2F0" in text  # the app's deep-link format
    assert '<failure message="drop of' in xml.read_text() and 'failures="1"' in xml.read_text()
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
    assert bounded.exit_code == 1 and "subject drop beyond bound: 2-step" in bounded.stdout
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
    assert f"{len(subset)} problems -> inconclusive" in res.stderr and f"{N} problems -> inconclusive" in res.stderr
    assert json.loads((tmp_path / "e.json").read_text())["tasks"][0]["n"] == N
    # an identical baseline is decided on the subset alone: no full-set run is made
    results2 = tmp_path / "results2"
    results2.mkdir()
    _with_correct(real_run, results2 / "base", set())
    res = runner.invoke(app, [*args[:2], str(results2), *args[3:]])
    assert res.exit_code == 0, res.output
    assert f"{len(subset)} problems -> pass" in res.stderr and f"{N} problems" not in res.stderr
    assert len([d for d in results2.iterdir() if (d / "run.json").exists()]) == 2
