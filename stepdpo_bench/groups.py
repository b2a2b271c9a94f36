"""Recipes across seeds: runs that share a ``--group`` (one recipe trained or sampled with several seeds) are
summarised and compared as groups, so the spread between seeds counts as the noise it is.

A single run's interval covers the problems' sampling only; two seeds of the same recipe can differ by more than
that.  The group interval is a two-level (hierarchical) bootstrap: resample the seeds, then the problems, and
take the mean; a comparison of two groups resamples each group's seeds and one shared draw of problems (the
pairing), so its interval carries both sources of variance.  ``bench/demo``'s and docs/demo.md's seed tables are
made by this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

REPS = 4000


@dataclass
class GroupSummary:
    group: str
    task: str
    runs: list[str]
    labels: list[str]
    n_problems: int
    accuracies: list[float]  # per run (seed), on the shared problems
    mean: float
    between_seed_sd: float  # the seeds' sample standard deviation (nan with one run)
    ci95: tuple[float, float]  # hierarchical bootstrap over seeds and problems


@dataclass
class GroupComparison:
    a: GroupSummary
    b: GroupSummary
    task: str
    n_problems: int  # problems every run of both groups answered
    diff: float  # mean(b) - mean(a) on those problems
    ci95: tuple[float, float]
    p_value: float  # two-sided bootstrap p (share of resampled differences on the other side of 0, doubled)


def _weights(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    """(reps, n) bootstrap counts: how often each index is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(float)


def _boot_means(scores: np.ndarray, problem_w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per replicate: mean over resampled seeds (rows) of the problem-weighted mean (shared problem draw)."""
    seeds = scores.shape[0]
    seed_w = _weights(rng, seeds, problem_w.shape[0])  # (reps, seeds)
    per_seed = problem_w @ scores.T / scores.shape[1]  # (reps, seeds): each seed's mean under each problem draw
    return (per_seed * seed_w).sum(axis=1) / seeds


def summarize(
    group: str, task: str, runs: list[str], labels: list[str], scores: np.ndarray, seed: int = 0
) -> GroupSummary:
    """``scores``: (runs x problems) per-problem scores on problems every run answered."""
    rng = np.random.default_rng(seed)
    acc = scores.mean(axis=1)
    boot = _boot_means(scores, _weights(rng, scores.shape[1], REPS), rng)
    return GroupSummary(
        group,
        task,
        runs,
        labels,
        int(scores.shape[1]),
        [float(x) for x in acc],
        float(acc.mean()),
        float(acc.std(ddof=1)) if len(acc) > 1 else float("nan"),
        (float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))),
    )


def compare(
    a: GroupSummary, b: GroupSummary, sa: np.ndarray, sb: np.ndarray, seed: int = 0, paired_seeds: bool = False
) -> GroupComparison:
    """Group b minus group a on the problems all their runs answered (``sa``, ``sb`` aligned on those).

    ``paired_seeds``: row i of both groups comes from the same seed (both recipes start from seed i's model, as in
    ``bench/demo.py``), so seeds are resampled together and the between-seed spread of levels cancels; without it
    each group's seeds are resampled on their own, right for independent recipes and very wide for paired ones."""
    rng = np.random.default_rng(seed)
    w = _weights(rng, sa.shape[1], REPS)  # one problem draw for both groups: the pairing
    if paired_seeds:
        if sa.shape != sb.shape:
            raise ValueError(f"paired seeds need as many runs in both groups ({sa.shape[0]} vs {sb.shape[0]})")
        diff_boot = _boot_means(sb - sa, w, rng)
    else:
        diff_boot = _boot_means(sb, w, rng) - _boot_means(sa, w, rng)
    diff = float(sb.mean() - sa.mean())
    p = float(min(1.0, 2 * min((diff_boot <= 0).mean(), (diff_boot >= 0).mean())))
    return GroupComparison(
        a,
        b,
        a.task,
        int(sa.shape[1]),
        diff,
        (float(np.quantile(diff_boot, 0.025)), float(np.quantile(diff_boot, 0.975))),
        p,
    )


def _common(matrix: np.ndarray) -> np.ndarray:
    """Columns (problems) every row answered."""
    return ~np.isnan(matrix).any(axis=0)


def group_runs(con: Any, task: str | None = None) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(group, task, problem set) -> its finished runs (latest per model), from the index."""
    from .leaderboard import leaderboard

    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in leaderboard(con, task):
        if r.get("run_group"):
            out.setdefault((r["run_group"], r["task"], r["problems_sha"] or ""), []).append(r)
    return out


def group_board(con: Any, task: str | None = None) -> list[GroupSummary]:
    """Every group on the index, per task and problem set: seeds, mean, between-seed SD, hierarchical CI."""
    from .leaderboard import score_matrix

    out = []
    for (group, t, _), rows in sorted(group_runs(con, task).items()):
        ids = [r["run_id"] for r in rows]
        m = score_matrix(con, ids)
        m = m[:, _common(m)]
        if m.shape[1]:
            out.append(summarize(group, t, ids, [r["label"] for r in rows], m))
    return sorted(out, key=lambda g: (g.task, -g.mean))


def compare_groups(con: Any, a: str, b: str, task: str | None = None) -> GroupComparison:
    """Group ``b`` minus group ``a`` on one task (the only task they share, or ``task``)."""
    from .leaderboard import score_matrix

    groups = group_runs(con, task)
    pick = {}
    for name in (a, b):
        found = [(k, v) for k, v in groups.items() if k[0] == name]
        if not found:
            known = sorted({k[0] for k in groups})
            raise ValueError(f"no finished runs in group {name!r}" + (f"; groups: {', '.join(known)}" if known else ""))
        pick[name] = found
    shared = {k[1] for k, _ in pick[a]} & {k[1] for k, _ in pick[b]}
    if len(shared) != 1:
        raise ValueError(
            f"groups {a!r} and {b!r} share {'no task' if not shared else 'tasks ' + ', '.join(sorted(shared))}; "
            "give --task"
        )
    t = shared.pop()
    rows_a = [r for k, v in pick[a] if k[1] == t for r in v]
    rows_b = [r for k, v in pick[b] if k[1] == t for r in v]
    ids = [r["run_id"] for r in rows_a + rows_b]
    m = score_matrix(con, ids)
    m = m[:, _common(m)]
    if not m.shape[1]:
        raise ValueError(f"groups {a!r} and {b!r} share no problem on {t}")
    sa, sb = m[: len(rows_a)], m[len(rows_a) :]
    ga = summarize(a, t, [r["run_id"] for r in rows_a], [r["label"] for r in rows_a], sa)
    gb = summarize(b, t, [r["run_id"] for r in rows_b], [r["label"] for r in rows_b], sb)
    return compare(ga, gb, sa, sb)


def group_table(groups: list[GroupSummary]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Groups (runs of one recipe across seeds; CI over seeds and problems)")
    for col in ("task", "group", "seeds", "problems", "mean acc %", "95% CI %", "between-seed SD pts", "per seed %"):
        table.add_column(col, justify="left" if col in ("task", "group", "per seed %") else "right")
    for g in groups:
        sd = "-" if g.between_seed_sd != g.between_seed_sd else f"{100 * g.between_seed_sd:.1f}"
        table.add_row(
            Text(g.task),
            Text(g.group),
            str(len(g.runs)),
            str(g.n_problems),
            f"{100 * g.mean:.1f}",
            f"{100 * g.ci95[0]:.1f}–{100 * g.ci95[1]:.1f}",
            sd,
            Text(" ".join(f"{100 * x:.1f}" for x in g.accuracies)),
        )
    return table
