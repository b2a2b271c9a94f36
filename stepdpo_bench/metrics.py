"""Run metrics: accuracy with a problem-clustered standard error, unbiased pass@k, equivalence-aware maj@k.

Accuracy is the mean over problems of each problem's mean correctness, and its standard error is the standard
deviation of those per-problem means over sqrt(#problems): with one sample per problem this is the usual
binomial error, with n > 1 it is the cluster-robust error (samples of one problem are not independent), given
one pseudo problem at 0 and one at 1 and a t quantile, as every avg@k / pass@k / maj@k interval (at_k.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from statistics import mean
from typing import Any

Z95 = 1.959963984540054
TRUNCATED = ("length", "context", "thinking")  # cut by --max-tokens, by the model's context window (budget
# clamped), or inside a thinking trace (no answer: stepdpo_bench/thinking.py)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), computed stably.  Needs k <= n."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(
            f"pass@k needs 0 < k <= n and 0 <= c <= n (k = {k} > n = {n})"
            if k > n
            else f"pass@k needs 0 < k <= n and 0 <= c <= n (got n={n}, c={c}, k={k})"
        )
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _stderr(values: list[float]) -> float:
    m = len(values)
    if m < 2:
        return float("nan")
    mu = sum(values) / m
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (m - 1) / m)


def _ks(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks and ks[-1] != n:
        ks.append(n)
    return ks


def majority_correct(preds: list[str | None], correct: list[bool], same: Callable[[str, str], bool]) -> bool:
    """Vote over answers grouped by equivalence (``1/2`` and ``0.5`` are one vote); ties go to the earliest."""
    reps: list[int] = []  # index of each group's first member
    votes: list[int] = []
    for i, p in enumerate(preds):
        if p is None:
            continue
        for g, r in enumerate(reps):
            if preds[r] == p or same(p, preds[r]):  # type: ignore[arg-type]
                votes[g] += 1
                break
        else:
            reps.append(i)
            votes.append(1)
    if not reps:
        return False
    best = max(range(len(reps)), key=lambda g: (votes[g], -reps[g]))
    return correct[reps[best]]


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval: honest near 0% and 100%, where the normal interval collapses to a point."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _accuracy_block(per_problem: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Accuracy, its standard error and a 95% CI: Wilson with one sample per problem, else the clustered t
    interval of avg@k (which counts the problems and the samples; at_k.py)."""
    means = [mean(1.0 if s["correct"] else 0.0 for s in ss) for ss in per_problem.values()]
    acc = mean(means) if means else float("nan")
    se = _stderr(means)
    if all(len(ss) == 1 for ss in per_problem.values()):
        lo, hi = wilson(sum(means), len(means))
    else:  # several samples per problem: the problem-clustered t interval of avg@k (stepdpo_bench/at_k.py)
        from .at_k import clustered_interval

        lo, hi = clustered_interval(means)["ci95"]  # stderr stays the plain clustered one, as reported before
    return {"accuracy": acc, "stderr": se, "ci95": [lo, hi], "n_problems": len(means)}


def _finite(obj: Any) -> Any:
    """NaN -> None, so run.json stays strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def compute_metrics(
    samples: Iterable[dict[str, Any]],
    same: Callable[[str, str], bool] | None = None,
    requested: Sequence[Any] = (),
) -> dict[str, Any]:
    """Metrics of a run from its sample records (fields: problem_id, correct, pred, finish_reason, n_tokens,
    subject, level).  ``same(a, b)`` is answer equivalence for maj@k (defaults to string equality).  ``at_k``
    holds avg@k / pass@k / maj@k with intervals (stepdpo_bench/at_k.py): the defaults plus ``requested``."""
    from .at_k import at_k_metrics, default_metrics

    samples = list(samples)
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in samples:
        by_problem[s["problem_id"]].append(s)
    for ss in by_problem.values():
        ss.sort(key=lambda s: s["sample_idx"])
    out: dict[str, Any] = _accuracy_block(by_problem)
    total = len(samples)
    out.update(
        n_samples=total,
        n_correct=sum(bool(s["correct"]) for s in samples),
        invalid_rate=sum(s["pred"] is None for s in samples) / total if total else float("nan"),
        truncation_rate=sum(s["finish_reason"] in TRUNCATED for s in samples) / total if total else float("nan"),
        context_clamped=sum(s["finish_reason"] == "context" for s in samples),
        mean_tokens=mean(s["n_tokens"] for s in samples) if samples else float("nan"),
    )
    traced = [s for s in samples if s.get("reasoning") is not None]
    if traced:  # a reasoning model's run: how long it thought, how often the budget cut the thought, and how
        # accurate it is where it finished thinking
        untruncated = [s for s in samples if s["finish_reason"] != "thinking"]
        counts = [s["reasoning_tokens"] for s in traced if s.get("reasoning_tokens") is not None]
        out["thinking"] = {
            "samples_with_trace": len(traced),
            "mean_reasoning_tokens": mean(counts) if counts else None,  # over the samples with a count
            "samples_with_token_count": len(counts),
            "truncated_in_thinking": sum(s["finish_reason"] == "thinking" for s in samples) / total,
            "accuracy_untruncated": (
                sum(bool(s["correct"]) for s in untruncated) / len(untruncated) if untruncated else None
            ),
        }
    methods = [s.get("method") for s in samples if s.get("method")]
    if methods:  # how answers were found: a run whose answers come from fallbacks shows it
        out["extraction"] = {m: methods.count(m) / len(methods) for m in sorted(set(methods))}
    n = min((len(ss) for ss in by_problem.values()), default=0)
    if n > 1:
        eq = same or (lambda a, b: a == b)
        # each problem's own n (a problem with more samples is estimated from all of them); k up to the smallest n
        out["pass@k"] = {
            str(k): mean(pass_at_k(len(ss), sum(bool(s["correct"]) for s in ss), k) for ss in by_problem.values())
            for k in _ks(n)
        }
        out["maj@k"] = {
            str(k): mean(
                1.0 if majority_correct([s["pred"] for s in ss[:k]], [bool(s["correct"]) for s in ss[:k]], eq) else 0.0
                for ss in by_problem.values()
            )
            for k in _ks(n)
            if k > 1
        }
    if n:
        specs = list(dict.fromkeys([*default_metrics(n), *requested]))
        out["at_k"] = at_k_metrics(by_problem, specs, same or (lambda a, b: a == b))
        if requested:
            out["requested"] = [s.name for s in requested]
    for key in ("subject", "level"):
        groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
        for pid, ss in by_problem.items():
            value = ss[0].get(key)
            if value is not None:
                groups[str(value)][pid] = ss
        if groups:
            out[f"by_{key}"] = {g: _accuracy_block(v) for g, v in sorted(groups.items())}
    return _finite(out)
