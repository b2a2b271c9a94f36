"""avg@k / pass@k / maj@k and their interval, checked against computations we did not write: a problem-level
bootstrap (numpy), scipy's t quantile, and the definitions themselves on hand-built runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from stepdpo_bench.at_k import AtK, clustered_interval, default_metrics, parse_metrics
from stepdpo_bench.metrics import compute_metrics


def _run(p_true: np.ndarray, k: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for i, p in enumerate(p_true):
        for j in range(k):
            ok = bool(rng.random() < p)
            out.append(
                {
                    "problem_id": f"p{i}",
                    "sample_idx": j,
                    "correct": ok,
                    "pred": "1" if ok else str(rng.integers(2, 5)),
                    "finish_reason": "stop",
                    "n_tokens": 10,
                }
            )
    return out


def _bootstrap(samples: list[dict], b: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of avg@k from resampling problems with all their samples."""
    by: dict[str, list[bool]] = {}
    for s in samples:
        by.setdefault(s["problem_id"], []).append(s["correct"])
    means = np.array([np.mean(v) for v in by.values()])
    idx = rng.integers(0, len(means), size=(b, len(means)))
    boot = means[idx].mean(axis=1)
    return float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_avg_at_k_interval_matches_a_problem_bootstrap(seed):
    """30 problems x 32 samples: our clustered t interval against 20,000 problem-level bootstrap resamples.  Ours
    is a little wider by design (t with 29 df, and the two pseudo problems), never narrower."""
    rng = np.random.default_rng(seed)
    samples = _run(rng.beta(0.6, 0.9, size=30), 32, rng)
    met = compute_metrics(samples, requested=parse_metrics("avg@32", 32))["at_k"]["avg@32"]
    lo, hi = met["ci95"]
    blo, bhi = _bootstrap(samples, 20_000, rng)
    assert abs(met["value"] - (blo + bhi) / 2) < 0.02
    ratio = (hi - lo) / (bhi - blo)
    assert 1.0 <= ratio <= 1.3, ratio
    assert 0 < met["sampling_share"] < 0.5  # with 32 samples most of the spread is the problems'


def test_interval_is_scipy_t_on_padded_values():
    values = [0.0, 0.25, 0.5, 1.0, 0.75]
    block = clustered_interval(values)
    padded = np.array([*values, 0.0, 1.0])
    se = padded.std(ddof=1) / np.sqrt(len(values))
    half = stats.t.ppf(0.975, len(values) - 1) * se
    mean = np.mean(values)
    assert block["ci95"] == pytest.approx([max(0, mean - half), min(1, mean + half)])


def test_all_wrong_on_30_problems_keeps_a_width():
    block = clustered_interval([0.0] * 30)
    assert block["value"] == 0 and 0.05 < block["ci95"][1] < 0.2


def test_definitions_on_a_hand_built_run():
    """Two problems, 4 samples: avg@2 uses the first two samples only; pass@2 is Chen's estimator; maj@3 votes
    over equivalent answers."""
    rows = [
        ("a", 0, True, "1"),
        ("a", 1, False, "2"),
        ("a", 2, False, "2"),
        ("a", 3, True, "1"),
        ("b", 0, False, "0.5"),
        ("b", 1, True, "1/2"),
        ("b", 2, True, "1/2"),
        ("b", 3, False, "3"),
    ]
    samples = [
        {"problem_id": p, "sample_idx": j, "correct": c, "pred": x, "finish_reason": "stop", "n_tokens": 1}
        for p, j, c, x in rows
    ]
    met = compute_metrics(samples, requested=parse_metrics("avg@2,pass@2,maj@3", 4))
    at = met["at_k"]
    assert at["avg@2"]["value"] == pytest.approx((0.5 + 0.5) / 2)
    assert at["avg@4"]["value"] == pytest.approx(0.5) == met["accuracy"]
    assert at["pass@2"]["value"] == pytest.approx(1 - 1 / 6)  # each problem: 1 - C(2,2)/C(4,2)
    assert at["maj@3"]["value"] == pytest.approx(0.5)  # a: "2" wins (wrong); b: "1/2" wins (right)
    assert met["requested"] == ["avg@2", "pass@2", "maj@3"]
    assert met["ci95"] == at["avg@4"]["ci95"]  # one interval for the run's accuracy and its avg@n


def test_parse_metrics_refuses_what_the_run_cannot_give():
    assert parse_metrics("avg@32, pass@1,pass@8,maj@16", 32) == [
        AtK("avg", 32),
        AtK("pass", 1),
        AtK("pass", 8),
        AtK("maj", 16),
    ]
    with pytest.raises(ValueError, match="--n 64"):
        parse_metrics("pass@64", 32)
    with pytest.raises(ValueError, match="avg@K"):
        parse_metrics("mean@4", 4)
    assert [s.name for s in default_metrics(6)] == [
        "avg@6",
        "pass@1",
        "pass@2",
        "pass@4",
        "pass@6",
        "maj@2",
        "maj@4",
        "maj@6",
    ]
