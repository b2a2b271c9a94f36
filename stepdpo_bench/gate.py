"""``stepdpo-bench check``: is the candidate checkpoint really worse than the baseline?

A non-inferiority gate with three verdicts (never a bare threshold on a noisy number):

- **pass**: the (1 - alpha) CI of the paired difference (candidate - baseline) lies above ``-max_drop``;
- **fail**: the drop is larger than ``max_drop`` *and* significantly below zero at ``alpha`` (exact McNemar for
  one sample per problem, paired t on per-problem means otherwise: clustered by problem);
- **inconclusive**: neither; the report gives the minimum detectable effect and roughly how many problems
  would decide.

With several tasks the per-task alpha is Bonferroni-corrected (alpha / k) so the family-wise false-alarm rate
stays at alpha.  The CI comes from a seeded paired bootstrap over problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .compare import breakdown, paired_arrays, per_problem
from .contracts import samples_link
from .manifest import Manifest
from .runs import RunDir, RunError, resolve_run

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
EXIT = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
Z_POWER = 0.8416212335729143  # z for 80% power


class GateError(ValueError):
    """Unusable input (exit 2): unknown run, mismatched runs, too few common problems."""


@dataclass
class TaskVerdict:
    task: str
    verdict: str
    reason: str
    baseline: str
    candidate: str
    n: int
    acc_baseline: float
    acc_candidate: float
    diff: float
    ci: tuple[float, float]
    p_value: float
    test: str
    alpha: float
    mde: float
    n_needed: int | None
    broken: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    subjects: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["ci"] = list(self.ci)
        return d


def resolve(ref: str, results: Path, task: str | None = None) -> RunDir:
    """A run id, a run directory, or ``latest:tag=T[,task=X][,label=L]`` (newest finished matching run)."""
    if ref.startswith("latest:"):
        conds = dict(kv.split("=", 1) for kv in ref[len("latest:") :].split(",") if "=" in kv)
        want_task = conds.get("task", task)
        best: tuple[str, RunDir] | None = None
        for mpath in Path(results).glob("*/run.json"):
            run = RunDir(mpath.parent)
            try:
                m = run.manifest()
            except RunError:
                continue
            if m is None or not m.done:
                continue
            tags = {m.model.method, m.source, *m.model.tags}
            if "tag" in conds and conds["tag"] not in tags:
                continue
            if want_task and m.task.name != want_task:
                continue
            if "label" in conds and m.model.label != conds["label"]:
                continue
            key = f"{m.created_at}|{m.updated_at}"
            if best is None or key > best[0]:
                best = (key, run)
        if best is None:
            raise GateError(
                f"{ref}: no finished run matches under {results}" + (f" for task {want_task}" if want_task else "")
            )
        return best[1]
    try:
        return resolve_run(ref, results)
    except RunError as exc:
        raise GateError(str(exc)) from None


def mismatches(a: Manifest, b: Manifest) -> list[str]:
    """What makes two runs incomparable: task and data, prompt (shown by name, compared by content), sampling
    settings, grader version and rules."""

    def prompt_name(m: Manifest) -> str:
        return str(m.prompt.name)

    checks = (
        ("task", lambda m: m.task.name, None),
        ("task data sha256", lambda m: m.task.data_sha256, None),
        (
            "prompt",
            lambda m: m.prompt.fingerprint or (m.identity.get("prompt") or {}).get("fingerprint") or m.prompt.name,
            prompt_name,
        ),
        ("temperature", lambda m: m.sampling.temperature, None),
        ("top_p", lambda m: m.sampling.top_p, None),
        ("samples per problem (n)", lambda m: m.sampling.n, None),
        ("max_tokens", lambda m: m.sampling.max_tokens, None),
        ("grader version", lambda m: m.grader_version, None),
        ("lenient grading", lambda m: m.grader.lenient, None),
    )
    out = []
    for name, get, show in checks:
        if get(a) != get(b):
            sa, sb = (show(a), show(b)) if show else (get(a), get(b))
            if sa == sb:  # same name, different content (an edited template)
                sa, sb = f"{sa} ({get(a)})", f"{sb} ({get(b)})"
            out.append(f"{name}: {sa!r} vs {sb!r}")
    return out


def bootstrap_ci(d: np.ndarray, alpha: float, seed: int, reps: int = 4000) -> tuple[float, float]:
    """Percentile CI of the mean paired difference, resampling problems (chunked to bound memory)."""
    rng = np.random.default_rng(seed)
    n = d.size
    means = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, reps, chunk):
        k = min(chunk, reps - start)
        idx = rng.integers(0, n, size=(k, n))
        means.append(d[idx].mean(axis=1))
    m = np.concatenate(means)
    return float(np.quantile(m, alpha / 2)), float(np.quantile(m, 1 - alpha / 2))


def judge(
    base: RunDir,
    cand: RunDir,
    *,
    max_drop: float = 0.01,
    alpha: float = 0.05,
    min_problems: int = 100,
    allow_mismatch: bool = False,
    seed: int = 0,
    max_subject_drop: float | None = None,
) -> TaskVerdict:
    """The gate's verdict for one task.  ``max_drop`` and ``max_subject_drop`` are fractions (0.01 = 1 point)."""
    mb, mc = _manifest(base), _manifest(cand)
    for m, run in ((mb, base), (mc, cand)):
        if not m.done:
            raise GateError(f"{run.path}: run is {m.status!r}; finish it before gating")
    mism = mismatches(mb, mc)
    if mism and not allow_mismatch:
        raise GateError("runs are not comparable (" + "; ".join(mism) + "); pass --allow-mismatch to compare anyway")
    sb, sc = _samples(base), _samples(cand)
    pb, pc = per_problem(sb), per_problem(sc)
    common = sorted(pb.keys() & pc.keys())
    if len(common) < min_problems:
        raise GateError(f"only {len(common)} problems in common (< --min-problems {min_problems})")
    a = np.array([pb[k] for k in common])
    b = np.array([pc[k] for k in common])
    res = paired_arrays(a, b)
    lo, hi = bootstrap_ci(b - a, alpha, seed)
    sig_drop = res.p_value < alpha and res.diff < 0
    if lo > -max_drop:
        verdict, reason = PASS, f"the {100 * (1 - alpha):g}% CI lies above -{100 * max_drop:g} points"
    elif res.diff < -max_drop and sig_drop:
        verdict, reason = FAIL, f"drop of {-100 * res.diff:.1f} points > {100 * max_drop:g}, p = {res.p_value:.2g}"
    else:
        verdict, reason = INCONCLUSIVE, "the data cannot tell a drop beyond the margin from noise"
    z = _z(1 - alpha / 2)
    mde = (z + Z_POWER) * res.se if res.se == res.se else math.nan
    n_needed = None
    if verdict == INCONCLUSIVE and res.se == res.se and res.se > 0:
        # problems needed so that the CI half-width fits between the estimate and the margin (or the estimate
        # clears the margin with 80% power), assuming the per-problem variance stays as observed
        gap = abs(res.diff + max_drop)
        if gap > 0:
            n_needed = math.ceil(res.n * ((z + Z_POWER) * res.se / gap) ** 2)
    subjects = _subjects(sb, sc)
    if max_subject_drop is not None and verdict != FAIL:
        bad = [s for s in subjects if s["diff"] < -max_subject_drop and s["p_value"] < alpha]
        if bad:
            verdict = FAIL
            reason = "subject drop beyond bound: " + ", ".join(f"{s['subject']} {100 * s['diff']:+.1f}" for s in bad)
    return TaskVerdict(
        task=mc.task.name,
        verdict=verdict,
        reason=reason,
        baseline=base.run_id,
        candidate=cand.run_id,
        n=res.n,
        acc_baseline=res.acc_a,
        acc_candidate=res.acc_b,
        diff=res.diff,
        ci=(lo, hi),
        p_value=res.p_value,
        test=res.test,
        alpha=alpha,
        mde=mde,
        n_needed=n_needed,
        broken=[k for k in common if pc[k] < pb[k]],
        fixed=[k for k in common if pc[k] > pb[k]],
        subjects=subjects,
        mismatches=mism,
    )


def _subjects(sb: list[dict[str, Any]], sc: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "subject": r["subject"],
            "n": r["n"],
            "acc_baseline": r["acc_a"],
            "acc_candidate": r["acc_b"],
            "diff": r["diff"],
            "p_value": r["p_value"],
        }
        for r in breakdown(sb, sc, "subject")
        if r["n"]
    ]


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def overall(verdicts: list[TaskVerdict]) -> str:
    if any(v.verdict == FAIL for v in verdicts):
        return FAIL
    if all(v.verdict == PASS for v in verdicts):
        return PASS
    return INCONCLUSIVE


def markdown(verdicts: list[TaskVerdict], max_drop: float, app_url: str | None = None, max_list: int = 20) -> str:
    """A PR comment: headline, one row per task, subjects, and the problems that broke (linked into the app)."""
    head = overall(verdicts)
    icon = {PASS: "PASS", FAIL: "FAIL", INCONCLUSIVE: "INCONCLUSIVE"}[head]
    lines = [
        f"## stepdpo-bench check: **{icon}**",
        "",
        f"Non-inferiority margin {100 * max_drop:g} points; candidate − baseline on the problems both answered.",
        "",
    ]
    if len(verdicts) > 1:
        lines += [
            f"{len(verdicts)} tasks: each tested at alpha/{len(verdicts)} (Bonferroni) so the chance of any "
            "false alarm stays at alpha.",
            "",
        ]
    lines += [
        "| task | verdict | baseline % | candidate % | diff pts | CI pts | p | n | MDE pts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.task} | {v.verdict} | {100 * v.acc_baseline:.1f} | {100 * v.acc_candidate:.1f} | "
            f"{100 * v.diff:+.1f} | {100 * v.ci[0]:+.1f} … {100 * v.ci[1]:+.1f} | {v.p_value:.2g} | {v.n} | "
            f"{100 * v.mde:.1f} |"
        )
    for v in verdicts:
        lines += ["", f"### {v.task}: {v.verdict} — {v.reason}"]
        if v.verdict == INCONCLUSIVE and v.n_needed:
            lines.append(f"About {v.n_needed} problems (now {v.n}) would decide at this effect size.")
        if v.mismatches:
            lines.append("Compared despite mismatches: " + "; ".join(v.mismatches))
        if v.subjects:
            lines += ["", "| subject | n | baseline % | candidate % | diff pts | p |", "|---|---|---|---|---|---|"]
            lines += [
                f"| {s['subject']} | {s['n']} | {100 * s['acc_baseline']:.1f} | {100 * s['acc_candidate']:.1f} "
                f"| {100 * s['diff']:+.1f} | {s['p_value']:.2g} |"
                for s in v.subjects
            ]
        if v.broken:
            lines += ["", f"Broke {len(v.broken)} problems (fixed {len(v.fixed)}):"]
            for pid in v.broken[:max_list]:
                if app_url:
                    lines.append(f"- [{pid}]({samples_link(app_url, v.baseline, v.candidate, pid)})")
                else:
                    lines.append(f"- {pid}")
            if len(v.broken) > max_list:
                lines.append(f"- … and {len(v.broken) - max_list} more")
    return "\n".join(lines) + "\n"


def junit(verdicts: list[TaskVerdict]) -> str:
    """JUnit XML: one test case per task; fail -> <failure>, inconclusive -> <skipped>."""
    from xml.sax.saxutils import escape, quoteattr

    fails = sum(v.verdict == FAIL for v in verdicts)
    skips = sum(v.verdict == INCONCLUSIVE for v in verdicts)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name="stepdpo-bench check" tests="{len(verdicts)}" failures="{fails}" skipped="{skips}">',
    ]
    for v in verdicts:
        out.append(f'  <testcase classname="stepdpo-bench.check" name={quoteattr(v.task)}>')
        msg = f"{v.reason}; diff {100 * v.diff:+.1f} pts, CI {100 * v.ci[0]:+.1f}..{100 * v.ci[1]:+.1f}"
        if v.verdict == FAIL:
            out.append(f"    <failure message={quoteattr(msg)}>{escape(', '.join(v.broken[:50]))}</failure>")
        elif v.verdict == INCONCLUSIVE:
            out.append(f"    <skipped message={quoteattr(msg)}/>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"


def stratified_ids(samples: list[dict[str, Any]], n: int, seed: int = 0) -> list[str]:
    """About ``n`` problem ids drawn proportionally from every (subject, level) stratum, at least one each."""
    strata: dict[tuple[Any, Any], list[str]] = {}
    seen = set()
    for s in samples:
        if s["problem_id"] in seen:
            continue
        seen.add(s["problem_id"])
        strata.setdefault((s.get("subject"), s.get("level")), []).append(s["problem_id"])
    total = len(seen)
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for _key, ids in sorted(strata.items(), key=lambda kv: str(kv[0])):
        k = max(1, round(n * len(ids) / total))
        out += list(rng.choice(sorted(ids), size=min(k, len(ids)), replace=False))
    return sorted(out)


def pick_run(refs: list[str], results: Path, task: str | None) -> RunDir:
    """The run among ``refs`` for ``task``: a ``latest:`` query resolves per task; ids/paths must match it."""
    found = []
    for ref in refs:
        run = resolve(ref, results, task)
        m = _manifest(run)
        if task is None or m.task.name == task:
            found.append(run)
    if not found:
        raise GateError(f"no run for task {task!r} among {', '.join(refs)}")
    return found[0]


def _samples(run: RunDir) -> list[dict[str, Any]]:
    """A run's samples, or GateError naming the file (a corrupt log line, a garbage parquet file)."""
    try:
        return run.read_samples()
    except RunError as exc:
        raise GateError(str(exc)) from None
    except Exception as exc:  # pyarrow's ArrowInvalid and friends: unusable input, never a verdict
        raise GateError(
            f"{run.path}: cannot read the samples ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})"
        ) from None


def _manifest(run: RunDir) -> Manifest:
    """A run's manifest, or GateError naming the file (missing, unreadable, malformed)."""
    try:
        m = run.manifest()
    except RunError as exc:
        raise GateError(str(exc)) from None
    if m is None:
        raise GateError(f"{run.path}: no run.json")
    return m


@dataclass
class CheckSettings:
    """How the gate judges: margins as fractions (0.01 = 1 point), the family-wise alpha, and what to refuse."""

    max_drop: float = 0.01
    alpha: float = 0.05
    min_problems: int = 100
    allow_mismatch: bool = False
    seed: int = 0
    max_subject_drop: float | None = None

    def for_tasks(self, k: int) -> dict[str, Any]:
        """Keyword arguments of ``judge`` for one of ``k`` tasks (alpha split: Bonferroni)."""
        return {
            "max_drop": self.max_drop,
            "alpha": self.alpha / k,
            "min_problems": self.min_problems,
            "allow_mismatch": self.allow_mismatch,
            "seed": self.seed,
            "max_subject_drop": self.max_subject_drop,
        }


def check_runs(
    baselines: list[str], candidates: list[str], tasks: list[str | None], results: Path, settings: CheckSettings
) -> list[TaskVerdict]:
    """Gate finished candidate runs against baselines, one verdict per task."""
    out = []
    for t in tasks:
        base = pick_run(baselines, results, t)
        out.append(
            judge(base, pick_run(candidates, results, t or _manifest(base).task.name), **settings.for_tasks(len(tasks)))
        )
    return out


def check_model(
    baselines: list[str],
    model: str,
    tasks: list[str | None],
    results: Path,
    settings: CheckSettings,
    sampler_opts: Any,
    data_dir: Path | None,
    subset: int | None,
    log: Any = print,
) -> list[TaskVerdict]:
    """Evaluate ``model`` with each baseline's task, prompt and sampling, then gate it: first on a stratified
    subset of the baseline's problems when ``subset`` is given, and on all of them only if that is inconclusive."""
    from dataclasses import replace

    from .evaluate import EvalRequest, evaluate
    from .samplers import SamplingParams, sampler_from_options

    bases = [pick_run(baselines, results, t) for t in tasks]
    manifests = [_manifest(b) for b in bases]
    first = manifests[0].sampling
    opts = replace(sampler_opts, backend=sampler_opts.backend or first.backend)
    sampler = sampler_from_options(model, opts, seed=first.seed or 0)
    verdicts = []
    try:
        for base, bm in zip(bases, manifests, strict=True):
            samples = _samples(base)
            all_ids = sorted({s["problem_id"] for s in samples})
            s = bm.sampling
            params = SamplingParams(s.temperature or 0.0, s.top_p or 1.0, s.max_tokens or 2048, s.n, s.seed or 0)
            stages = [stratified_ids(samples, subset, settings.seed)] if subset and subset < len(all_ids) else []
            stages.append(all_ids)
            kw = settings.for_tasks(len(tasks))
            for ids in stages:
                req = EvalRequest(
                    model=model,
                    task=bm.task.name,
                    data_dir=data_dir,
                    split=bm.task.split,
                    problem_ids=ids,
                    prompt=bm.prompt.name,
                    sampling=params,
                    out_dir=results,
                    task_seed=(bm.task.meta or {}).get("seed", 0),
                )
                res = evaluate(req, sampler)
                verdict = judge(base, res.run_dir, **{**kw, "min_problems": min(kw["min_problems"], len(ids))})
                log(f"{bm.task.name}: {len(ids)} problems -> {verdict.verdict}")
                if verdict.verdict != INCONCLUSIVE:
                    break  # the subset decided: the full set is not needed
            verdicts.append(verdict)
    finally:
        sampler.close()
    return verdicts
