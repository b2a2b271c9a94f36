"""Recipe groups across seeds: the hierarchical bootstrap against a naive loop written from its definition, the
spread between seeds widening the interval as it must, and the CLI over real run files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.groups import compare, summarize
from stepdpo_bench.runs import RunDir

runner = CliRunner()


def _naive(sa: np.ndarray, sb: np.ndarray | None, reps: int, seed: int) -> tuple[float, float]:
    """Resample seeds of each group, then one draw of problems for both, by explicit index lists."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        probs = rng.integers(0, sa.shape[1], sa.shape[1])
        ma = sa[rng.integers(0, sa.shape[0], sa.shape[0])][:, probs].mean()
        if sb is None:
            out.append(ma)
        else:
            out.append(sb[rng.integers(0, sb.shape[0], sb.shape[0])][:, probs].mean() - ma)
    return float(np.quantile(out, 0.025)), float(np.quantile(out, 0.975))


def _seeds(rng, p, shifts) -> np.ndarray:
    return np.array([(rng.random(p.size) < np.clip(p + s, 0, 1)).astype(float) for s in shifts])


def test_hierarchical_interval_matches_a_naive_resampling_loop():
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 0.5, size=400)
    sa = _seeds(rng, p, [-0.04, 0.0, 0.03])
    sb = _seeds(rng, p, [0.02, 0.06, 0.05, 0.01])
    ga = summarize("a", "t", ["1", "2", "3"], ["1", "2", "3"], sa)
    assert ga.ci95 == pytest.approx(_naive(sa, None, 4000, 9), abs=0.008)
    gb = summarize("b", "t", list("1234"), list("1234"), sb)
    res = compare(ga, gb, sa, sb)
    assert res.ci95 == pytest.approx(_naive(sa, sb, 4000, 11), abs=0.008)
    assert res.diff == pytest.approx(sb.mean() - sa.mean())


def test_paired_seeds_cancel_the_spread_of_levels():
    """Arms that start from the same seed's model: resampling seeds together (the naive loop, by index) gives a
    tight interval around a real shift, where resampling each group's seeds alone cannot see it; scipy's binomial
    test on the discordant problems summed over seeds (a stratified McNemar test) agrees that it is real."""
    from scipy.stats import binomtest

    rng = np.random.default_rng(2)
    p = rng.beta(0.5, 0.5, size=500)
    levels = [-0.25, 0.0, 0.05, 0.06, -0.24]  # SFT models of five seeds: 55 to 87% as in bench/demo.py
    sa = _seeds(rng, p, levels)
    sb = sa.copy()
    flip = (sa == 0) & (rng.random(sa.shape) < 0.08)  # b fixes 8% of a's failures, breaks nothing
    sb[flip] = 1.0
    ga = summarize("a", "t", list("01234"), list("01234"), sa)
    gb = summarize("b", "t", list("01234"), list("01234"), sb)
    paired = compare(ga, gb, sa, sb, paired_seeds=True)
    loose = compare(ga, gb, sa, sb)
    r = np.random.default_rng(5)
    naive = []
    for _ in range(4000):
        seeds, probs = r.integers(0, 5, 5), r.integers(0, 500, 500)
        naive.append((sb[seeds][:, probs] - sa[seeds][:, probs]).mean())
    assert paired.ci95 == pytest.approx(tuple(np.quantile(naive, [0.025, 0.975])), abs=0.004)
    assert paired.ci95[0] > 0 and paired.p_value < 0.01 and loose.ci95[0] < 0 < loose.ci95[1]
    fixed, broken = int(((sa == 0) & (sb == 1)).sum()), int(((sa == 1) & (sb == 0)).sum())
    assert binomtest(fixed, fixed + broken).pvalue < 0.01
    with pytest.raises(ValueError, match="paired seeds need as many runs"):
        compare(ga, gb, sa, sb[:4], paired_seeds=True)


def test_spread_between_seeds_widens_the_interval():
    rng = np.random.default_rng(1)
    p = rng.beta(0.5, 0.5, size=500)
    calm = _seeds(rng, p, [0.0, 0.0, 0.0])
    wild = _seeds(rng, p, [-0.08, 0.0, 0.08])
    w_calm = np.diff(summarize("c", "t", list("abc"), list("abc"), calm).ci95)[0]
    w_wild = np.diff(summarize("w", "t", list("abc"), list("abc"), wild).ci95)[0]
    one = np.diff(summarize("o", "t", ["a"], ["a"], calm[:1]).ci95)[0]
    assert w_wild > 1.5 * w_calm and one == pytest.approx(2 * 1.96 * calm[0].std() / np.sqrt(500), rel=0.15)


def test_groups_on_the_board_and_compared_from_the_cli(app_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    src = {RunDir(d).manifest().model.method: d for d in results.iterdir() if (d / "samples.parquet").is_file()}
    for method, group in (("dpo", "recipe-dpo"), ("step-dpo", "recipe-step")):
        for seed in range(3):
            dst = results / f"{group}-s{seed}__arith__{seed:012x}"
            shutil.copytree(src[method], dst)
            m = json.loads((dst / "run.json").read_text())
            m["run_id"] = dst.name
            m["model"].update(label=f"{group}-s{seed}", name_or_path=f"/m/{group}-s{seed}", group=group)
            m.pop("regraded_from", None)
            (dst / "run.json").write_text(json.dumps(m))
    assert runner.invoke(app, ["ingest", str(results)]).exit_code == 0
    board = runner.invoke(app, ["leaderboard", "--results", str(results), "--groups"])
    assert board.exit_code == 0, board.output
    assert "recipe-dpo" in board.stdout and "recipe-step" in board.stdout and "between-seed SD" in board.stdout
    res = runner.invoke(app, ["compare", "recipe-dpo", "recipe-step", "--groups", "--results", str(results)])
    assert res.exit_code == 0, res.output
    assert "recipe-step - recipe-dpo on arith" in res.stdout and "seeds and problems resampled" in res.stdout
    bad = runner.invoke(app, ["compare", "recipe-dpo", "nope", "--groups", "--results", str(results)])
    assert bad.exit_code == 2 and "no finished runs in group 'nope'" in bad.stderr
