"""``stepdpo-bench check``: is the candidate checkpoint really worse than the baseline?

A non-inferiority gate with three verdicts, both decided against the margin ``m`` (``--max-drop``):

- **pass**: the (1 - alpha) CI of the paired difference (candidate - baseline) lies above ``-m``: the test of
  "drop >= m" rejects at alpha/2 one-sided;
- **fail**: the CI lies below ``-m``: the test of "drop <= m" rejects at alpha/2 one-sided;
- **inconclusive**: the CI contains ``-m``; the report gives the minimum detectable effect and roughly how many
  problems would decide.

So a candidate whose true drop is exactly the margin passes at most alpha/2 of the time, and one whose true
drop is within the margin fails at most alpha/2 of the time.  The interval is ``stats.paired_difference``'s
(Tango's score interval for one sample per problem, a paired t on per-problem means otherwise), which holds
when few problems change.  With several tasks the per-task alpha is Bonferroni-corrected (alpha / k); a subject
bound (``--max-subject-drop``) is tested per subject with Holm.  The stratified escalation of ``check_model`` is
a two-look group-sequential design with O'Brien-Fleming alpha spending (``stats.two_look_tails``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .compare import natural_key, per_problem
from .contracts import samples_link
from .manifest import Manifest
from .runs import RunDir, RunError, resolve_run
from .stats import PairedDifference, holm_adjusted, paired_difference, two_look_tails, z_of

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
    p_value: float  # one-sided p of the verdict's test (pass: "drop >= m"; fail: "drop <= m"); else the smaller
    test: str
    alpha: float  # the two-sided level of ``ci`` at this look (alpha/k per task; less at an interim look)
    mde: float
    n_needed: int | None
    p_within: float = math.nan  # H0 "drop >= margin" (small: pass)
    p_beyond: float = math.nan  # H0 "drop <= margin" (small: fail)
    max_drop: float = 0.01
    broken: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    subjects: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # the escalation's looks: problems, level, verdict
    problem_sets: str = ""  # how the two runs' problem sets relate, when they differ

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
        ("top_k", lambda m: m.sampling.top_k, None),
        ("min_p", lambda m: m.sampling.min_p, None),
        ("repetition_penalty", lambda m: m.sampling.repetition_penalty, None),
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


def decide(d: PairedDifference, max_drop: float, tail: float) -> tuple[str, tuple[float, float]]:
    """The decision itself, on a paired difference: pass when the interval (``tail`` excluded each side) lies
    above ``-max_drop``, fail when it lies below, else inconclusive.  ``judge`` and bench/check.py both use it."""
    lo, hi = d.ci(tail)
    if lo > -max_drop:
        return PASS, (lo, hi)
    if hi < -max_drop:
        return FAIL, (lo, hi)
    return INCONCLUSIVE, (lo, hi)


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
    tail: float | None = None,
) -> TaskVerdict:
    """The gate's verdict for one task.  ``max_drop`` and ``max_subject_drop`` are fractions (0.01 = 1 point).
    ``tail`` is the one-sided level of each side at this look (default alpha/2; smaller at an interim look)."""
    del seed  # the decision has no random part; kept so callers may pass their settings unchanged
    tail = alpha / 2 if tail is None else tail
    mb, mc = _manifest(base), _manifest(cand)
    for m, run in ((mb, base), (mc, cand)):
        if not m.done:
            raise GateError(f"{run.path}: run is {m.status!r}; finish it before gating")
    mism = mismatches(mb, mc)
    if mism and not allow_mismatch:
        raise GateError("runs are not comparable (" + "; ".join(mism) + "); pass --allow-mismatch to compare anyway")
    sb, sc = _samples(base), _samples(cand)
    pb, pc = per_problem(sb), per_problem(sc)
    common = sorted(pb.keys() & pc.keys(), key=natural_key)
    if len(common) < min_problems:
        raise GateError(
            f"only {len(common)} problems in common (< --min-problems {min_problems}); baseline has {len(pb)}, "
            f"candidate {len(pc)}"
        )
    sets = "" if len(common) == len(pb) == len(pc) else f"{len(common)} shared of {len(pb)} (baseline) and {len(pc)}"
    d = paired_difference(np.array([pb[k] for k in common]), np.array([pc[k] for k in common]))
    verdict, (lo, hi) = decide(d, max_drop, tail)
    p_within, p_beyond = d.p_above(-max_drop), d.p_below(-max_drop)
    level = f"{100 * (1 - 2 * tail):.4g}% CI"
    if verdict == PASS:
        p = p_within
        reason = f"the {level} lies above -{100 * max_drop:g} points: any drop is within the margin"
    elif verdict == FAIL:
        p = p_beyond
        reason = f"the {level} lies below -{100 * max_drop:g} points: the drop exceeds the margin"
    else:
        p = min(p_within, p_beyond)
        reason = f"the {level} contains -{100 * max_drop:g} points: the data cannot tell"
    z = z_of(tail)
    se = (hi - lo) / (2 * z) if hi == hi else math.nan  # the interval's own scale (Tango has no closed-form SE)
    mde = (z + Z_POWER) * se if se == se else math.nan
    n_needed = None
    if verdict == INCONCLUSIVE and se == se and se > 0:
        # problems needed so that the interval's half-width fits between the estimate and the margin (80% power
        # when the true difference is the estimate), assuming the per-problem variance stays as observed
        gap = abs(d.diff + max_drop)
        if gap > 0:
            n_needed = max(d.n + 1, math.ceil(d.n * ((z + Z_POWER) * se / gap) ** 2))
    subjects = _subjects(sb, sc, common, max_subject_drop, tail)
    if max_subject_drop is not None and verdict != FAIL:
        bad = [s for s in subjects if s.get("beyond_bound")]
        if bad:
            verdict = FAIL
            reason = (
                f"subject drop beyond -{100 * max_subject_drop:g} points (Holm over {len(subjects)} subjects): "
                + (", ".join(f"{s['subject']} {100 * s['diff']:+.1f}" for s in bad))
            )
    return TaskVerdict(
        task=mc.task.name,
        verdict=verdict,
        reason=reason,
        baseline=base.run_id,
        candidate=cand.run_id,
        n=d.n,
        acc_baseline=d.acc_a,
        acc_candidate=d.acc_b,
        diff=d.diff,
        ci=(lo, hi),
        p_value=p,
        test=d.test,
        alpha=2 * tail,
        mde=mde,
        n_needed=n_needed,
        p_within=p_within,
        p_beyond=p_beyond,
        max_drop=max_drop,
        broken=[k for k in common if pc[k] < pb[k]],
        fixed=[k for k in common if pc[k] > pb[k]],
        subjects=subjects,
        mismatches=mism,
        problem_sets=sets,
    )


def _subjects(
    sb: list[dict[str, Any]], sc: list[dict[str, Any]], common: list[str], bound: float | None, tail: float
) -> list[dict[str, Any]]:
    """Per subject: the paired difference and its two-sided p; with a bound, each subject's one-sided test of
    "drop <= bound", Holm-adjusted over the subjects (``beyond_bound`` marks the rejections)."""
    subject = {s["problem_id"]: s.get("subject") for s in sb}
    pb, pc = per_problem(sb), per_problem(sc)
    groups: dict[str, list[str]] = {}
    for k in common:
        if subject.get(k) is not None:
            groups.setdefault(str(subject[k]), []).append(k)
    rows = []
    for name, ids in sorted(groups.items()):
        d = paired_difference(np.array([pb[k] for k in ids]), np.array([pc[k] for k in ids]))
        rows.append(
            {
                "subject": name,
                "n": d.n,
                "acc_baseline": d.acc_a,
                "acc_candidate": d.acc_b,
                "diff": d.diff,
                "p_value": d.p_two_sided(0.0),
                **({"p_beyond_bound": d.p_below(-bound)} if bound is not None else {}),
            }
        )
    if bound is not None and rows:
        adjusted = holm_adjusted([r["p_beyond_bound"] for r in rows])
        for r, p in zip(rows, adjusted, strict=True):
            r["p_beyond_bound_holm"] = p
            r["beyond_bound"] = p <= tail
    return rows


def overall(verdicts: list[TaskVerdict]) -> str:
    if any(v.verdict == FAIL for v in verdicts):
        return FAIL
    if all(v.verdict == PASS for v in verdicts):
        return PASS
    return INCONCLUSIVE


def markdown(verdicts: list[TaskVerdict], max_drop: float, app_url: str | None = None, max_list: int = 20) -> str:
    """A PR comment: headline, one row per task, the escalation's looks, subjects, and the problems that broke
    (linked into the app)."""
    head = overall(verdicts)
    icon = {PASS: "PASS", FAIL: "FAIL", INCONCLUSIVE: "INCONCLUSIVE"}[head]
    lines = [
        f"## stepdpo-bench check: **{icon}**",
        "",
        f"Non-inferiority margin {100 * max_drop:g} points; candidate − baseline on the problems both answered. "
        "Pass: the CI lies above −margin; fail: it lies below −margin; otherwise inconclusive.",
        "",
    ]
    if len(verdicts) > 1:
        lines += [
            f"{len(verdicts)} tasks: each tested at alpha/{len(verdicts)} (Bonferroni) so the chance of any "
            "false verdict stays at alpha.",
            "",
        ]
    lines += [
        "| task | verdict | baseline % | candidate % | diff pts | CI pts | level | p | n | MDE pts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.task} | {v.verdict} | {100 * v.acc_baseline:.1f} | {100 * v.acc_candidate:.1f} | "
            f"{100 * v.diff:+.1f} | {100 * v.ci[0]:+.1f} … {100 * v.ci[1]:+.1f} | {100 * (1 - v.alpha):.4g}% | "
            f"{v.p_value:.2g} | {v.n} | {100 * v.mde:.1f} |"
        )
    for v in verdicts:
        lines += ["", f"### {v.task}: {v.verdict} — {v.reason}"]
        if v.stages:
            lines.append(
                "Escalation (two looks, alpha spending): "
                + "; ".join(
                    f"look {i + 1} on {st['problems']} problems at one-sided level {st['tail']:.3g} -> {st['verdict']}"
                    for i, st in enumerate(v.stages)
                )
            )
        if v.problem_sets:
            lines.append(f"Problem sets differ: compared on {v.problem_sets} (candidate).")
        if v.verdict == INCONCLUSIVE and v.n_needed:
            lines.append(f"About {v.n_needed} problems (now {v.n}) would decide at this effect size.")
        if v.mismatches:
            lines.append("Compared despite mismatches: " + "; ".join(v.mismatches))
        if v.subjects:
            bound = any("p_beyond_bound_holm" in s for s in v.subjects)
            lines += [
                "",
                "| subject | n | baseline % | candidate % | diff pts | p |"
                + (" p beyond bound (Holm) |" if bound else ""),
                "|---|---|---|---|---|---|" + ("---|" if bound else ""),
            ]
            lines += [
                f"| {s['subject']} | {s['n']} | {100 * s['acc_baseline']:.1f} | {100 * s['acc_candidate']:.1f} "
                f"| {100 * s['diff']:+.1f} | {s['p_value']:.2g} |"
                + (f" {s['p_beyond_bound_holm']:.2g} |" if bound else "")
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
    """Exactly ``min(n, problems)`` problem ids, drawn from every (subject, level) stratum in proportion to its size
    (largest-remainder apportionment; ties and the draw within a stratum are seeded).  With fewer than one
    problem per stratum to give, the strata with the largest shares get one each."""
    strata: dict[tuple[Any, Any], list[str]] = {}
    seen = set()
    for s in samples:
        if s["problem_id"] in seen:
            continue
        seen.add(s["problem_id"])
        strata.setdefault((s.get("subject"), s.get("level")), []).append(s["problem_id"])
    total = len(seen)
    if n >= total:
        return sorted(seen)
    rng = np.random.default_rng(seed)
    groups = [sorted(ids) for _key, ids in sorted(strata.items(), key=lambda kv: str(kv[0]))]
    quota = np.array([n * len(g) / total for g in groups])
    take = np.floor(quota).astype(int)
    order = np.lexsort((rng.random(len(groups)), -(quota - take)))  # largest remainder first, seeded ties
    take[order[: n - int(take.sum())]] += 1
    out: list[str] = []
    for ids, k in zip(groups, take, strict=True):
        out += list(rng.choice(ids, size=int(k), replace=False)) if k else []
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
    spending: str = "pocock"  # the escalation's alpha spending: pocock | obrien-fleming

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
            params = SamplingParams(
                s.temperature or 0.0,
                s.top_p or 1.0,
                s.max_tokens or 2048,
                s.n,
                s.seed or 0,
                top_k=s.top_k,
                min_p=s.min_p,
                repetition_penalty=s.repetition_penalty,
            )
            stages = [stratified_ids(samples, subset, settings.seed)] if subset and subset < len(all_ids) else []
            stages.append(all_ids)
            kw = settings.for_tasks(len(tasks))
            # two looks with alpha spending: the interim's level and the final's add up to the one-sided alpha/2
            t1 = len(stages[0]) / len(all_ids)
            tails = two_look_tails(t1, kw["alpha"] / 2, settings.spending) if len(stages) > 1 else None
            looks: list[dict[str, Any]] = []
            for i, ids in enumerate(stages):
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
                interim = i < len(stages) - 1
                verdict = judge(
                    base,
                    res.run_dir,
                    **{**kw, "min_problems": 1 if interim else kw["min_problems"]},
                    tail=tails[i] if tails else None,
                )
                looks.append({"problems": len(ids), "tail": verdict.alpha / 2, "verdict": verdict.verdict})
                level = f"one-sided level {verdict.alpha / 2:.3g}"
                log(f"{bm.task.name}: look {i + 1}, {len(ids)} problems, {level} -> {verdict.verdict}")
                if verdict.verdict != INCONCLUSIVE:
                    break  # the interim look decided: the full set is not needed
            verdict.stages = looks if len(stages) > 1 else []
            verdicts.append(verdict)
    finally:
        sampler.close()
    return verdicts
