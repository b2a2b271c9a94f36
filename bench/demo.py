"""The demo's experiment (issue 18): does Step-DPO beat the SFT model on arith, and why?

Per seed, the demo's own phases (trainer/demo.py: a model from scratch, SFT, the pair pipeline at temperature
0.8) plus greedy mining of the same SFT model (temperature 0, k 1: its own errors) and a gold-solution file; then
six arms, all from the SFT model with the same batch and the same number of steps:

    step-dpo         Step-DPO pairs (sampled), sigmoid beta 0.5 + RPO alpha 1
    step-dpo-dpop    Step-DPO pairs (sampled), DPO-Positive beta 0.5, lambda 5
    step-dpo-greedy  Step-DPO pairs mined greedily (on-policy negatives), sigmoid beta 0.5 + RPO alpha 1
    dpo              DPO pairs (sampled, whole solutions), sigmoid beta 0.5 + RPO alpha 1
    nll-step         control: NLL on the chosen step only (the Step-DPO pairs' chosen side)
    sft-gold         control: continued SFT on the gold solutions of the same problems (one per Step-DPO pair)

1. **Selection on validation only** (``--sweep-seed``): each arm at lr {1e-5, 3e-5, 1e-4, 3e-4} x steps {20, 40, 80}
   (a cosine schedule ending at each; 80 steps is ~3 epochs of the sampled pairs), scored greedily on arith *train*
   problems 1500-1999 (never mined, never fine-tuned on); per arm the best (lr, steps).
2. **Test, once per chosen model**, every seed: SFT and each arm's chosen recipe on the 500 arith test problems,
   greedy and at temperature 0.8; per-seed paired differences (Tango) and pooled over seeds: the hierarchical
   seed x problem bootstrap of ``stepdpo_bench.groups`` with seeds paired and, as an outside check, a stratified
   exact McNemar test (scipy's binomial test on the discordant problems summed over seeds).
3. **Pairs**: per seed and mining mode, how many pairs, their purity (located step = ``arith.first_wrong_step``),
   the share on problems the greedy SFT model already solves, and what a reference log-prob filter would keep.

Every unit of work is skipped when finished (a kill resumes); the test evaluations land in ``OUT/results`` with
``--group`` names, so ``stepdpo-bench compare sft step-dpo --groups --results OUT/results`` reproduces the pooled
rows.

    python bench/demo.py --out results/demo-bench --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stepdpo_bench.compare import paired, per_problem  # noqa: E402
from stepdpo_bench.tasks import arith  # noqa: E402
from trainer.demo import DemoConfig, build_policy, pairs_dir, pinned, run_pipeline  # noqa: E402

console = Console(stderr=True)
# the issue's grid was {1e-4, 3e-4, 1e-3}; on this 0.7M-parameter model 1e-3 cost Step-DPO 67-70 validation points
# and 1e-4 already 13, so the grid moved down (docs/demo.md)
LRS = (1e-5, 3e-5, 1e-4, 3e-4)
STEPS = (20, 40, 80)
VALIDATION = range(1500, 2000)  # arith train problems: after the greedy mining range, before the SFT range
SCALE: dict[str, Any] = {"demo": {}, "batch": 16, "test": 500}  # --smoke: the demo's smoke sizes, to try the script
SIGMOID = {"loss_type": "sigmoid", "beta": 0.5, "rpo_alpha": 1.0}
DPOP = {"loss_type": "dpop", "beta": 0.5, "dpop_lambda": 5.0}


@dataclass(frozen=True)
class Arm:
    name: str
    data: str  # step | greedy | dpo | gold | gold-greedy | controlled-step | controlled-dpo (prepare()'s files)
    method: str
    loss: dict[str, Any]
    stages: int = 1  # sDPO: the data in stages, each from and referenced to the previous stage (steps split evenly)


ARMS = (
    Arm("step-dpo", "step", "step-dpo", SIGMOID),
    Arm("step-dpo-dpop", "step", "step-dpo", DPOP),
    Arm("step-dpo-greedy", "greedy", "step-dpo", SIGMOID),
    Arm("dpo", "dpo", "dpo", SIGMOID),
    Arm("nll-step", "step", "step-dpo", {"loss_type": "nll", "reference": "none"}),
    Arm("sft-gold", "gold", "dpo", {"loss_type": "nll", "reference": "none"}),
    # the step-wise family beside Step-DPO (issue 27)
    Arm("scdpo", "controlled-dpo", "dpo", SIGMOID),  # SCDPO as the paper trains it: shared prefix, whole solutions
    Arm("scdpo-step", "controlled-step", "step-dpo", SIGMOID),  # the same pairs cut to the first differing step
    Arm("sdpo", "step", "step-dpo", DPOP, stages=2),  # the Step-DPO pairs in two stages (sDPO)
)


# ---------------------------------------------------------------- per seed: SFT model, pairs, data files
def prepare(out: Path, seed: int) -> tuple[DemoConfig, Path, dict[str, Path]]:
    cfg = DemoConfig(out=str(out / f"seed-{seed}"), seed=seed, **SCALE["demo"])
    sd = Path(cfg.out)
    t0 = time.perf_counter()
    sft_dir = build_policy(cfg, console)
    for mining in ("sampled", "greedy", "controlled"):
        funnel = pairs_dir(cfg, mining) / "funnel.json"
        if not funnel.is_file() or "build" not in json.loads(funnel.read_text()):
            console.rule(f"seed {seed}: {mining} mining")
            run_pipeline(cfg, sft_dir, console, mining)
    files = {
        "step": sd / "pairs" / "step_dpo_pairs.jsonl",
        "dpo": sd / "pairs" / "dpo_pairs.jsonl",
        "greedy": sd / "pairs-greedy" / "step_dpo_pairs.jsonl",
        "gold": sd / "gold_pairs.jsonl",
        "gold-greedy": sd / "gold_pairs_greedy.jsonl",
        "controlled-step": sd / "pairs-controlled" / "step_dpo_pairs.jsonl",
        "controlled-dpo": sd / "pairs-controlled" / "dpo_pairs.jsonl",
    }
    for src, dst in (("step", "gold"), ("greedy", "gold-greedy")):
        if not files[dst].is_file():
            write_gold(files[src], files[dst])
    console.print(f"seed {seed}: SFT model and pairs ready ({time.perf_counter() - t0:.0f} s)", highlight=False)
    return cfg, sft_dir, files


def write_gold(step_pairs: Path, dst: Path) -> None:
    """One record per Step-DPO pair: the problem's gold solution as ``chosen`` (the continued-SFT control, trained
    with the NLL loss, so it sees the same problems, as often, with the same steps and batch)."""
    problems = {p.id: p for p in arith.generate("train").problems}
    rows = []
    for line in step_pairs.read_text().splitlines():
        p = json.loads(line)
        gold = problems[p["problem_id"]].reference
        rejected = p["initial_reason_steps"] + p["full_rejected"]  # unused by the NLL loss; the trainer wants one
        rows.append({"prompt": p["prompt"], "initial_reason_steps": "", "chosen": gold, "rejected": rejected})
        rows[-1].update(answer=p["answer"], problem_id=p["problem_id"])
    tmp = dst.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(dst)


# ---------------------------------------------------------------- training and evaluation
def train_arm(arm: Arm, sft_dir: Path, data: Path, out: Path, lr: float, steps: int, seed: int) -> Path:
    from trainer.train import TrainConfig, train

    tc = TrainConfig(
        method=arm.method,
        model=str(sft_dir),
        data=str(data),
        out=str(out),
        max_steps=steps,
        lr=lr,
        batch_size=SCALE["batch"],
        prompt="arith-step",
        max_length=256,
        max_completion_length=128,
        seed=seed,
        save_steps=20,
        log_steps=1000,
        **arm.loss,
    )
    if arm.stages > 1:
        from trainer.stages import train_stages

        return train_stages(replace(tc, max_steps=max(1, steps // arm.stages)), arm.stages, log=lambda m: None)
    return train(tc, log=lambda m: None)


def evaluate(
    model: Path,
    results: Path,
    label: str,
    ids: list[str] | None,
    temperature: float = 0.0,
    group: str | None = None,
    seed: int = 0,
) -> tuple[dict[str, float], float]:
    """Per-problem scores and accuracy of ``model`` on arith test (``ids`` None) or the given train problems."""
    from stepdpo_bench.evaluate import EvalRequest, finished, plan
    from stepdpo_bench.evaluate import evaluate as run_eval
    from stepdpo_bench.samplers import SamplingParams, make_sampler

    req = EvalRequest(
        model=str(model),
        task="arith",
        split="test" if ids is None else "train",
        limit=None if ids else SCALE["test"],
        problem_ids=ids,
        out_dir=results,
        label=label,
        group=group,
        sampling=SamplingParams(temperature=temperature, max_tokens=64, seed=seed),
    )
    sampler = make_sampler("hf", str(model), batch_size=64, dtype="float32")
    try:
        p = plan(req, sampler.backend, sampler.identity())
        res = run_eval(req, sampler, console if finished(p) is None else Console(stderr=True, quiet=True))
    finally:
        sampler.close()
    scores = per_problem(res.run_dir.read_samples())
    return scores, float(np.mean(list(scores.values())))


def last_log(run: Path) -> dict[str, Any]:
    lines = (run / "train_log.jsonl").read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


# ---------------------------------------------------------------- 1. selection on validation
def sweep(out: Path, seed: int, arms: tuple[Arm, ...]) -> dict[str, dict[str, Any]]:
    cfg, sft_dir, files = prepare(out, seed)
    sd = Path(cfg.out)
    ids = [f"arith/train/{i}" for i in VALIDATION]
    log_path = out / "sweep.jsonl"
    done = {}
    if log_path.is_file():
        for line in log_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["arm"], r["lr"], r["steps"])] = r
    _, sft_val = evaluate(sft_dir, sd / "val-results", "sft", ids)
    console.print(f"SFT on validation: {100 * sft_val:.1f}%", highlight=False)
    total = len(arms) * len(LRS) * len(STEPS)
    for arm in arms:
        for lr in LRS:
            for steps in STEPS:
                if (arm.name, lr, steps) in done:
                    continue
                t0 = time.perf_counter()
                run = train_arm(
                    arm, sft_dir, files[arm.data], sd / "sweep" / arm.name / f"lr{lr:g}-s{steps}", lr, steps, seed
                )
                _, acc = evaluate(run, sd / "val-results", f"{arm.name}-lr{lr:g}-s{steps}", ids)
                end = last_log(run)
                row = {
                    "arm": arm.name,
                    "lr": lr,
                    "steps": steps,
                    "val_acc": acc,
                    "sft_val_acc": sft_val,
                    "run": str(run),
                    "loss": end.get("loss"),
                    "chosen_reward": end.get("rewards/chosen"),
                    "rejected_reward": end.get("rewards/rejected"),
                    "epoch": end.get("epoch"),
                    "seconds": time.perf_counter() - t0,
                }
                done[(arm.name, lr, steps)] = row
                with log_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                console.print(
                    f"[{len(done)}/{total}] {arm.name} lr {lr:g} steps {steps}: validation {100 * acc:.1f}% "
                    f"(SFT {100 * sft_val:.1f}), loss {row['loss']:.3f}, {row['seconds']:.0f} s",
                    highlight=False,
                )
    chosen = {}
    for arm in arms:
        rows = [r for k, r in done.items() if k[0] == arm.name]
        # best validation accuracy; ties go to fewer steps, then the smaller learning rate
        chosen[arm.name] = max(rows, key=lambda r: (r["val_acc"], -r["steps"], -r["lr"]))
    (out / "selected.json").write_text(json.dumps(chosen, indent=1))
    return chosen


# ---------------------------------------------------------------- 2. test, once per chosen model
CONTROLS = ("nll-step", "sft-gold")


def best_step_arm(chosen: dict[str, dict[str, Any]]) -> str:
    """The Step-DPO arm with the best validation accuracy (ties: the first listed)."""
    names = [a.name for a in ARMS if a.method == "step-dpo" and a.name not in CONTROLS and a.name in chosen]
    return max(names, key=lambda n: chosen[n]["val_acc"]) if names else "step-dpo"


def test_seed(
    out: Path,
    seed: int,
    arms: tuple[Arm, ...],
    chosen: dict[str, dict[str, Any]],
    sweep_seed: int,
    temperatures: tuple[float, ...],
    stress: tuple[tuple[float, int], ...] = (),
) -> dict[str, dict[float, dict[str, float]]]:
    """SFT and every arm's chosen model on test; ``stress``: every arm also at these (lr, steps), greedy only: a
    budget that moves the model, so the arms' harms can be told apart over seeds."""
    cfg, sft_dir, files = prepare(out, seed)
    sd = Path(cfg.out)
    models = {"sft": sft_dir}
    for arm in arms:
        c = chosen[arm.name]
        if seed == sweep_seed:
            models[arm.name] = Path(c["run"])  # the very model validation chose
        else:
            models[arm.name] = train_arm(
                arm, sft_dir, files[arm.data], sd / "final" / arm.name, c["lr"], c["steps"], seed
            )
    best = best_step_arm(chosen)
    best_data = next(a.data for a in ARMS if a.name == best)
    for arm in arms:  # the controls on the best Step-DPO arm's problems, lr and steps: attribution at equal budget
        ref, c = chosen.get(best), chosen[arm.name]
        data = {"nll-step": best_data, "sft-gold": "gold" if best_data == "step" else "gold-greedy"}.get(arm.name)
        if data and ref and (data, c["lr"], c["steps"]) != (arm.data, ref["lr"], ref["steps"]):
            run = sd / "sweep" / arm.name / f"lr{ref['lr']:g}-s{ref['steps']}"
            if not (seed == sweep_seed and data == arm.data and (run / "stepdpo_train.json").is_file()):
                run = train_arm(
                    arm, sft_dir, files[data], sd / "final" / f"{arm.name}@{best}", ref["lr"], ref["steps"], seed
                )
            models[f"{arm.name}@{best}"] = run
    moved = {}
    for lr, steps in stress:
        for arm in arms:
            name = f"{arm.name}{stress_suffix(lr, steps)}"
            run = sd / "sweep" / arm.name / f"lr{lr:g}-s{steps}"
            if not (seed == sweep_seed and (run / "stepdpo_train.json").is_file()):
                run = train_arm(arm, sft_dir, files[arm.data], sd / "final" / name, lr, steps, seed)
            moved[name] = run
    scores: dict[str, dict[float, dict[str, float]]] = {}
    jobs = [(n, p, t) for n, p in models.items() for t in temperatures] + [(n, p, 0.0) for n, p in moved.items()]
    for name, path, t in jobs:
        group = name if t == 0 else f"{name}@t{t:g}"
        s, acc = evaluate(path, out / "results", f"{group}-seed{seed}", None, t, group, seed)
        scores.setdefault(name, {})[t] = s
        console.print(f"seed {seed} {group}: test {100 * acc:.1f}%", highlight=False)
    return scores


def stress_suffix(lr: float, steps: int) -> str:
    return f"@lr{lr:g}-s{steps}"


def parse_stress(text: str) -> tuple[float, int]:
    try:
        lr, steps = text.split(":")
        return float(lr), int(steps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--stress {text!r}: write LR:STEPS, e.g. 1e-4:40") from None


# ---------------------------------------------------------------- 3. the pairs: purity, off-mode share, filters
def pair_report(out: Path, seed: int) -> dict[str, Any]:
    sd = out / f"seed-{seed}"
    problems = {p.id: p for p in arith.generate("train").problems}
    solutions = {name: collected(sd / name) for name in ("pairs", "pairs-greedy")}
    greedy_ok = {s["problem_id"]: bool(s["correct"]) for s in solutions["pairs-greedy"].values()}
    rep: dict[str, Any] = {}
    for name, sols in solutions.items():
        pairs = [json.loads(x) for x in (sd / name / "step_dpo_pairs.jsonl").read_text().splitlines()]
        pure = [
            arith.first_wrong_step(
                problems[p["problem_id"]], list(sols[f"{p['problem_id']}#{p['sample_idx']}"]["steps"])
            )
            == p["step_index"]
            for p in pairs
        ]
        on_solved = [greedy_ok.get(p["problem_id"], False) for p in pairs]
        rep[name] = {
            "pairs": len(pairs),
            "problems": len({p["problem_id"] for p in pairs}),
            "purity": float(np.mean(pure)) if pairs else None,
            "on_greedy_solved": float(np.mean(on_solved)) if pairs else None,
        }
        if name == "pairs":
            rep["filters"] = ref_filter(sd / "sft", pairs, pure, on_solved)
    rep["greedy_train_acc"] = float(np.mean(list(greedy_ok.values())))
    ctl = [json.loads(x) for x in (sd / "pairs-controlled" / "step_dpo_pairs.jsonl").read_text().splitlines()]
    from stepdpo_bench.steps import split_steps

    pure_c = [
        arith.first_wrong_step(problems[p["problem_id"]], split_steps(p["initial_reason_steps"] + p["full_rejected"]))
        == p["step_index"]
        for p in ctl
    ]
    rep["pairs-controlled"] = {
        "pairs": len(ctl),
        "problems": len({p["problem_id"] for p in ctl}),
        "purity": float(np.mean(pure_c)) if ctl else None,
        "at_controlled_step": float(np.mean([p["error_step"] == p["control_step"] for p in ctl])) if ctl else None,
        "on_greedy_solved": float(np.mean([greedy_ok.get(p["problem_id"], False) for p in ctl])) if ctl else None,
        "temperatures": dict(sorted(Counter(str(x["temperature"]) for x in ctl).items())),
    }
    return rep


def collected(pipe: Path) -> dict[str, dict[str, Any]]:
    """A pipeline's collected solutions by ``problem_id#sample_idx``."""
    from stepdpo_bench.runs import RunDir

    ptr = json.loads((pipe / "collect.json").read_text())
    return {f"{s['problem_id']}#{s['sample_idx']}": s for s in RunDir(pipe / "collect" / ptr["run_id"]).read_samples()}


def ref_filter(sft_dir: Path, pairs: list[dict[str, Any]], pure: list[bool], on_solved: list[bool]) -> list[dict]:
    """Keep a pair when the SFT model's log-prob of the rejected step is at least the chosen one's minus a margin:
    the wrong step is one the policy itself would plausibly write.  How many each margin keeps, and their purity."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.data import Pair, encode
    from trainer.train import _collate, completion_logps  # the trainer's own reference log-probs

    tok = AutoTokenizer.from_pretrained(sft_dir)
    model = AutoModelForCausalLM.from_pretrained(sft_dir, dtype=torch.float32).eval()
    objs = [
        Pair(str(i), p["prompt"], p["initial_reason_steps"], p["chosen"], p["rejected"]) for i, p in enumerate(pairs)
    ]
    enc, dropped = encode(objs, tok, "step-dpo", "arith-step", 256, 128)
    if dropped:
        raise ValueError(f"{dropped} pairs too long to encode; the filter's rows would not line up with the pairs")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gap = []
    with torch.no_grad():
        for i in range(0, len(enc), 64):
            batch = _collate(list(enumerate(enc[i : i + 64])), pad)
            lp, _ = completion_logps(model, batch)
            n = len(batch["index"])
            gap += (lp[n:] - lp[:n]).tolist()  # rejected minus chosen
    gap_a = np.array(gap)
    rows = []
    for margin in (0.0, 1.0, 2.0, 5.0, float("inf")):
        keep = gap_a >= -margin
        rows.append(
            {
                "margin": margin,
                "kept": int(keep.sum()),
                "purity": float(np.mean(np.array(pure)[keep])) if keep.any() else None,
                "on_greedy_solved": float(np.mean(np.array(on_solved)[keep])) if keep.any() else None,
            }
        )
    return rows


# ---------------------------------------------------------------- report
def pooled(scores: dict[int, dict[str, dict[float, dict[str, float]]]], a: str, b: str, t: float) -> dict[str, Any]:
    from scipy.stats import binomtest

    from stepdpo_bench import groups

    seeds = sorted(scores)
    ids = sorted(set.intersection(*(set(scores[s][a][t]) & set(scores[s][b][t]) for s in seeds)))
    sa = np.array([[scores[s][a][t][i] for i in ids] for s in seeds])
    sb = np.array([[scores[s][b][t][i] for i in ids] for s in seeds])
    ga = groups.summarize(a, "arith", [], [], sa)
    gb = groups.summarize(b, "arith", [], [], sb)
    g = groups.compare(ga, gb, sa, sb, paired_seeds=True)  # every arm of seed s starts from seed s's SFT model
    per_seed = [paired(scores[s][a][t], scores[s][b][t]) for s in seeds]
    fixed, broken = sum(p.n_fixed for p in per_seed), sum(p.n_broken for p in per_seed)
    exact = binomtest(fixed, fixed + broken, 0.5).pvalue if fixed + broken else 1.0
    return {
        "a": a,
        "b": b,
        "temperature": t,
        "per_seed": [p.to_dict() for p in per_seed],
        "diff": g.diff,
        "ci95": g.ci95,
        "p_bootstrap": g.p_value,
        "fixed": fixed,
        "broken": broken,
        "p_stratified_exact": float(exact),
        "mean_a": ga.mean,
        "mean_b": gb.mean,
        "sd_a": ga.between_seed_sd,
        "sd_b": gb.between_seed_sd,
    }


def report(
    out: Path, chosen: dict[str, dict[str, Any]], scores: dict, pairs: dict[int, dict], temps: tuple, stress: tuple = ()
) -> None:
    lines = [f"## Selection on validation (arith train {VALIDATION.start}-{VALIDATION.stop - 1}, greedy)", ""]
    rows = [json.loads(x) for x in (out / "sweep.jsonl").read_text().splitlines()]
    steps = sorted({r["steps"] for r in rows})
    lines += ["| arm | lr | " + " | ".join(f"{s} steps" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for name, c in chosen.items():
        cell = {(r["lr"], r["steps"]): r for r in rows if r["arm"] == name}
        for lr in sorted({k[0] for k in cell}):
            vals = [
                ("**{:.1f}**" if (lr, s) == (c["lr"], c["steps"]) else "{:.1f}").format(100 * cell[(lr, s)]["val_acc"])
                if (lr, s) in cell
                else "-"
                for s in steps
            ]
            lines.append(f"| {name} | {lr:g} | " + " | ".join(vals) + " |")
    lines.append(f"\nSFT on validation: {100 * rows[0]['sft_val_acc']:.1f}%\n")
    seeds = sorted(scores)
    for t in temps:
        lines += [f"## Test (arith test, {SCALE['test']} problems, temperature {t:g}): accuracy % per seed", ""]
        names = [n for n in scores[seeds[0]] if t in scores[seeds[0]][n]]
        lines += [
            "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
            "|---|" + "---|" * (len(seeds) + 1),
        ]
        for n in names:
            accs = [100 * np.mean(list(scores[s][n][t].values())) for s in seeds]
            lines.append(f"| {n} | " + " | ".join(f"{a:.1f}" for a in accs) + f" | {np.mean(accs):.1f} |")
        lines += [
            "",
            "| comparison | per seed (pts, Tango p) | pooled diff [95% CI] | p (paired seed x problem bootstrap) | "
            "fixed / broken | p (stratified exact) |",
            "|---|---|---|---|---|---|",
        ]
        comps = [("sft", n) for n in names if n != "sft"]
        best = best_step_arm(chosen)
        comps += [
            (a, b)
            for a, b in (
                ("dpo", "step-dpo"),
                ("nll-step", "step-dpo"),
                ("sft-gold", "step-dpo"),
                ("step-dpo", "step-dpo-greedy"),
                ("step-dpo", "step-dpo-dpop"),
                ("dpo", "scdpo"),
                ("step-dpo", "scdpo-step"),
                ("scdpo", "scdpo-step"),
                ("step-dpo-dpop", "sdpo"),
                *((f"{c}@{best}", best) for c in CONTROLS),
            )
            if a in names and b in names
        ]
        for lr, steps in stress:  # the same contrasts at the budget that moves the model
            x = stress_suffix(lr, steps)
            comps += [
                (a + x, b + x)
                for a, b in (
                    ("sft-gold", "nll-step"),
                    ("nll-step", "step-dpo"),
                    ("dpo", "step-dpo"),
                    ("step-dpo", "step-dpo-dpop"),
                    ("step-dpo", "step-dpo-greedy"),
                )
                if a + x in names and b + x in names
            ]
        for a, b in comps:
            r = pooled(scores, a, b, t)
            per = ", ".join(f"{100 * p['diff']:+.1f} ({p['p_value']:.2g})" for p in r["per_seed"])
            lines.append(
                f"| {b} - {a} | {per} | {100 * r['diff']:+.1f} [{100 * r['ci95'][0]:+.1f}, {100 * r['ci95'][1]:+.1f}] "
                f"| {r['p_bootstrap']:.3g} | {r['fixed']} / {r['broken']} | {r['p_stratified_exact']:.3g} |"
            )
        lines.append("")
    lines += [
        "## Pairs (Step-DPO): purity against arith.first_wrong_step, share on greedy-solved problems",
        "",
        "| seed | greedy train acc | sampled pairs | purity | on greedy-solved | greedy-mined pairs | purity | "
        "on greedy-solved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, r in pairs.items():
        a, g = r["pairs"], r["pairs-greedy"]
        lines.append(
            f"| {s} | {100 * r['greedy_train_acc']:.1f} | {a['pairs']} | {100 * a['purity']:.1f} | "
            f"{100 * a['on_greedy_solved']:.1f} | {g['pairs']} | {100 * (g['purity'] or 0):.1f} | "
            f"{100 * (g['on_greedy_solved'] or 0):.1f} |"
        )
    lines += [
        "",
        "Step-controlled (SCDPO) pairs: purity against arith.first_wrong_step, share whose error is at the controlled "
        "step, share on greedy-solved problems, pairs per temperature:",
        "",
        "| seed | pairs | problems | purity | at the controlled step | on greedy-solved | by temperature |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, r in pairs.items():
        c = r["pairs-controlled"]
        lines.append(
            f"| {s} | {c['pairs']} | {c['problems']} | {100 * (c['purity'] or 0):.1f} | "
            f"{100 * (c['at_controlled_step'] or 0):.1f} | {100 * (c['on_greedy_solved'] or 0):.1f} | "
            + ", ".join(f"{t}: {n}" for t, n in c["temperatures"].items())
            + " |"
        )
    lines += [
        "",
        "Reference log-prob filter on the sampled pairs (keep: log p(rejected) >= log p(chosen) - margin, SFT model):",
        "",
        "| seed | "
        + " | ".join(
            f"margin {f['margin']:g}: kept / purity / on solved" for f in next(iter(pairs.values()))["filters"]
        )
        + " |",
        "|---|" + "---|" * 5,
    ]
    for s, r in pairs.items():
        cells = [
            f"{f['kept']} / {100 * (f['purity'] or 0):.1f} / {100 * (f['on_greedy_solved'] or 0):.1f}"
            for f in r["filters"]
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    print(text)


def main() -> None:
    global LRS, STEPS, VALIDATION
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/demo-bench"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--sweep-seed", type=int, default=0)
    ap.add_argument("--arms", nargs="+", default=[a.name for a in ARMS], choices=[a.name for a in ARMS])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 0.8])
    ap.add_argument("--lrs", type=float, nargs="+", default=list(LRS), help="the sweep's learning rates")
    ap.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="the sweep's step budgets")
    ap.add_argument("--threads", type=int, default=DemoConfig.threads)
    ap.add_argument(
        "--stress",
        type=parse_stress,
        nargs="*",
        default=[],
        metavar="LR:STEPS",
        help="also test every arm at this budget (greedy), e.g. 1e-4:40: one that moves the model",
    )
    ap.add_argument("--sweep-only", action="store_true", help="stop after the validation sweep")
    ap.add_argument("--smoke", action="store_true", help="toy sizes end to end (a couple of minutes): tries the script")
    args = ap.parse_args()
    if args.smoke:
        from trainer.demo import SMOKE

        LRS, STEPS, VALIDATION = (1e-4, 1e-3), (2, 4), range(1500, 1520)
        SCALE.update(demo={**SMOKE, "greedy_problems": 24}, batch=4, test=20)
    if not args.smoke:
        LRS, STEPS = tuple(args.lrs), tuple(args.steps)
    arms = tuple(a for a in ARMS if a.name in args.arms)
    args.out.mkdir(parents=True, exist_ok=True)
    temps = tuple(args.temperatures)
    t0 = time.perf_counter()
    with pinned(args.threads):
        chosen = sweep(args.out, args.sweep_seed, arms)
        console.print(f"sweep done at {time.perf_counter() - t0:.0f} s", highlight=False)
        if args.sweep_only:
            return
        scores, pairs = {}, {}
        for s in args.seeds:
            scores[s] = test_seed(args.out, s, arms, chosen, args.sweep_seed, temps, tuple(args.stress))
            pairs[s] = pair_report(args.out, s)
            (args.out / "pairs.json").write_text(json.dumps(pairs, indent=1))
            console.print(f"seed {s} done at {time.perf_counter() - t0:.0f} s", highlight=False)
    report(args.out, chosen, scores, pairs, temps, tuple(args.stress))
    (args.out / "experiment.json").write_text(
        json.dumps(
            {"chosen": chosen, "pairs": pairs, "arms": [asdict(a) for a in arms], "seconds": time.perf_counter() - t0},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
