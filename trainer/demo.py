"""``stepdpo-bench demo``: the whole Step-DPO story on a laptop CPU, on a task where every step's truth is known.

1. build a tiny Qwen2 from scratch (tokenizer trained with ``tokenizers``, one token per digit) and fine-tune it
   on ``arith`` training solutions in the ``Step k:`` format (SFT);
2. run the pair pipeline with the SFT model on other ``arith`` training problems: collect, locate (exact
   ``symbolic`` for the pairs, ``rollout`` alongside for comparison), rectify, build Step-DPO and DPO pairs;
3. train DPO and Step-DPO from the SFT model, each at the recipe bench/demo.py selected on validation;
4. evaluate SFT, DPO and Step-DPO on ``arith`` test (and a GSM8K slice when ``--data-dir`` is given), ingest,
   print the leaderboard and the paired comparisons.

Every phase writes under ``--out`` and is skipped when its output is complete, so re-running resumes.
``--smoke`` runs the same code at toy sizes (seconds to a minute) for the test suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from stepdpo_bench.tasks import arith


@dataclass(frozen=True)
class Recipe:
    """One method's preference training from the SFT model: what ``bench/demo.py`` selects on validation."""

    steps: int
    lr: float
    loss_type: str = "sigmoid"
    beta: float = 0.5
    rpo_alpha: float = 0.0
    dpop_lambda: float = 50.0
    mining: str = "sampled"  # which pairs: sampled (temperature 0.8, k 4), greedy (the policy's own errors) or
    # controlled (SCDPO: the policy's correct solutions corrupted from a chosen step)
    stages: int = 1  # sDPO: the pairs in this many stages, each from and referenced to the previous stage's model


@dataclass
class DemoConfig:
    out: str = "results/demo"
    seed: int = 0
    # model
    hidden: int = 64
    layers: int = 4
    heads: int = 2
    vocab: int = 300
    # SFT on arith train problems [sft_from, sft_from + sft_problems): constant lr after warmup until the running
    # training loss reaches sft_target_loss, then a linear cooldown (sft_steps caps it); None: a cosine schedule
    # over exactly sft_steps.  Ending by loss ends every seed at the same point of learning (docs/demo.md).
    sft_steps: int = 2000
    sft_batch: int = 32
    sft_lr: float = 3e-3
    sft_target_loss: float | None = 0.04
    sft_cooldown: int = 100
    sft_from: int = 2000
    sft_problems: int = 3000
    # pipeline on arith train problems [0, pipeline_problems): k solutions each at temperature 0.8 ("sampled"),
    # and, when a recipe asks for it, one greedy solution each on [0, greedy_problems) ("greedy")
    pipeline_problems: int = 1000
    greedy_problems: int = 1500
    k: int = 4
    rollout_m: int = 4
    rollout_solutions: int = 200  # rollout runs beside symbolic on this many wrong solutions, for comparison
    rectify_n: int = 4
    pairs_per_error: int = 2
    verify_chosen: bool = True  # smoke: off, its model reaches answers only by luck
    # preference training: each method's recipe as bench/demo.py selected it on a validation slice of arith train
    # (docs/demo.md); batch shared
    dpo: Recipe = field(default_factory=lambda: Recipe(steps=80, lr=1e-5, rpo_alpha=1.0))
    step_dpo: Recipe = field(default_factory=lambda: Recipe(steps=80, lr=1e-5, loss_type="dpop", dpop_lambda=5.0))
    scdpo: Recipe = field(default_factory=lambda: Recipe(steps=20, lr=1e-5, rpo_alpha=1.0, mining="controlled"))
    sdpo: Recipe = field(
        default_factory=lambda: Recipe(steps=10, lr=1e-5, loss_type="dpop", dpop_lambda=5.0, stages=2)
    )  # steps per stage
    # step-controlled mining (SCDPO): each correct solution corrupted from one step drawn uniformly, temperatures
    # tried lowest first, control_tries continuations each
    control_temperatures: tuple[float, ...] = (1.0, 1.3, 1.6)
    control_tries: int = 4
    pref_batch: int = 16
    # reproducibility: the same seed gives the same numbers on a machine (fixed thread count, deterministic kernels)
    threads: int = 2
    # evaluation
    test_problems: int = 500
    data_dir: str | None = None
    gsm8k_problems: int = 20

    def recipe(self, method: str) -> Recipe:
        return {"dpo": self.dpo, "step-dpo": self.step_dpo, "scdpo": self.scdpo, "sdpo": self.sdpo}[method]


# the demo's methods: (the trainer's method, which pairs file)
METHODS = {
    "dpo": ("dpo", "dpo_pairs.jsonl"),  # whole solutions
    "step-dpo": ("step-dpo", "step_dpo_pairs.jsonl"),
    "scdpo": ("dpo", "dpo_pairs.jsonl"),  # step-controlled pairs: shared prefix, whole continuations (the paper's)
    "sdpo": ("step-dpo", "step_dpo_pairs.jsonl"),  # Step-DPO pairs in stages
}


SMOKE = dict(
    hidden=64,
    layers=2,
    heads=2,
    sft_steps=300,
    sft_target_loss=None,
    sft_batch=16,
    sft_problems=1000,
    pipeline_problems=16,
    k=4,
    rollout_m=2,
    rollout_solutions=16,
    rectify_n=8,
    verify_chosen=False,
    greedy_problems=24,
    pref_batch=4,
    test_problems=20,
    gsm8k_problems=2,
)


def _done(path: Path) -> bool:
    return (path / "stepdpo_train.json").is_file() and (path / "config.json").is_file()


def build_policy(cfg: DemoConfig, console: Console) -> Path:
    """Phases 1: base model from scratch, then SFT.  Returns the SFT checkpoint (reused when complete)."""
    from stepdpo_bench.tiny import build_tiny_checkpoint

    from .sft import SFTConfig, sft

    out = Path(cfg.out)
    sft_dir = out / "sft"
    if _done(sft_dir):
        console.print(f"SFT model: reusing {sft_dir}", highlight=False)
        return sft_dir
    train = arith.generate("train").problems
    corpus = [p.question + "\n" + (p.reference or "") for p in train[cfg.sft_from : cfg.sft_from + 1000]]
    base = build_tiny_checkpoint(
        out / "base",
        corpus,
        vocab_size=cfg.vocab,
        hidden_size=cfg.hidden,
        num_layers=cfg.layers,
        num_heads=cfg.heads,
        chat_template=False,
        seed=cfg.seed,
        init_std=0.02,
        individual_digits=True,
    )
    problems = train[cfg.sft_from : cfg.sft_from + cfg.sft_problems]
    with _bar(console) as bar:
        tid = bar.add_task("SFT", total=cfg.sft_steps, loss="")
        sft(
            SFTConfig(
                model=str(base),
                out=str(sft_dir),
                steps=cfg.sft_steps,
                batch_size=cfg.sft_batch,
                lr=cfg.sft_lr,
                target_loss=cfg.sft_target_loss,
                cooldown=cfg.sft_cooldown,
                seed=cfg.seed,
                log_every=5,
            ),
            problems,
            log=lambda x: bar.update(tid, completed=x["step"], loss=f"loss {x['loss']:.3f}"),
        )
    return sft_dir


def greedy_accuracy(model: Path, ids: list[str] | None, limit: int | None = None) -> float:
    """Greedy accuracy of ``model`` on arith train problems ``ids`` (or the first ``limit`` test problems when
    ``ids`` is None), through the harness (runs under ``MODEL/eval``, reused when finished)."""
    import numpy as np

    from stepdpo_bench.compare import per_problem
    from stepdpo_bench.evaluate import EvalRequest, evaluate
    from stepdpo_bench.samplers import SamplingParams, make_sampler

    req = EvalRequest(
        model=str(model),
        task="arith",
        split="test" if ids is None else "train",
        limit=limit if ids is None else None,
        problem_ids=ids,
        out_dir=Path(model) / "eval",
        label=Path(model).name,
        sampling=SamplingParams(max_tokens=64),
    )
    sampler = make_sampler("hf", str(model), batch_size=64, dtype="float32")
    try:
        res = evaluate(req, sampler, Console(stderr=True, quiet=True))
    finally:
        sampler.close()
    return float(np.mean(list(per_problem(res.run_dir.read_samples()).values())))


def _bar(console: Console) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
    )


def run_pipeline(cfg: DemoConfig, sft_dir: Path, console: Console, mining: str = "sampled") -> dict[str, Any]:
    """Phase 2 into ``OUT/pairs`` (sampled: k solutions at 0.8) or ``OUT/pairs-greedy`` (greedy: one solution at
    temperature 0, so every rejected step is the policy's own argmax error); rectify samples at 0.8 either way."""
    from .pipeline.config import PipelineConfig
    from .pipeline.context import Pipeline
    from .pipeline.run import print_funnel, run_stages, stages_for

    if mining not in ("sampled", "greedy", "controlled"):
        raise ValueError(f"mining {mining!r}: choose sampled, greedy or controlled")
    greedy = mining == "greedy"
    if mining == "controlled":
        _share_collect(pairs_dir(cfg, "sampled"), pairs_dir(cfg, mining))
    pc = PipelineConfig(
        model=str(sft_dir),
        out=str(pairs_dir(cfg, mining)),
        task="arith",
        batch_size=64,
        limit=cfg.greedy_problems if greedy else cfg.pipeline_problems,
        k=1 if greedy else cfg.k,
        temperature=0.0 if greedy else 0.8,
        rectify_temperature=0.8,
        max_tokens=64,
        seed=cfg.seed,
        locators=["symbolic", "rollout"],
        rollout_m=cfg.rollout_m,
        rectify_n=cfg.rectify_n,
        verify_chosen=cfg.verify_chosen,
        compare_limit=cfg.rollout_solutions,
        pairs_per_error=cfg.pairs_per_error,
        contamination=["arith"],
        mining="step-controlled" if mining == "controlled" else "located",
        control_temperatures=list(cfg.control_temperatures),
        control_tries=cfg.control_tries,
    ).validate()
    funnel = run_stages(Pipeline(pc, console), stages_for(pc.mining))
    print_funnel(funnel, console)
    return funnel


def pairs_dir(cfg: DemoConfig, mining: str) -> Path:
    return Path(cfg.out) / {"sampled": "pairs", "greedy": "pairs-greedy", "controlled": "pairs-controlled"}[mining]


def _share_collect(src: Path, dst: Path) -> None:
    """Step-controlled mining starts from the same collected solutions as the sampled pipeline (same policy,
    problems and sampling): copy that finished run instead of sampling it again; collect then finds it done."""
    import shutil

    ptr = src / "collect.json"
    if (dst / "collect.json").is_file() or not ptr.is_file():
        return
    run_id = json.loads(ptr.read_text())["run_id"]
    shutil.copytree(src / "collect" / run_id, dst / "collect" / run_id, dirs_exist_ok=True)


def train_pair(cfg: DemoConfig, method: str, sft_dir: Path, console: Console) -> Path:
    from .train import TrainConfig, train

    out = Path(cfg.out) / method
    if (out / "stepdpo_train.json").is_file():
        console.print(f"{method}: reusing {out}", highlight=False)
        return out
    r = cfg.recipe(method)
    kind, name = METHODS[method]
    data = pairs_dir(cfg, r.mining) / name
    tc = TrainConfig(
        method=kind,
        model=str(sft_dir),
        data=str(data),
        out=str(out),
        max_steps=r.steps,
        beta=r.beta,
        lr=r.lr,
        batch_size=cfg.pref_batch,
        prompt="arith-step",
        loss_type=r.loss_type,
        rpo_alpha=r.rpo_alpha,
        dpop_lambda=r.dpop_lambda,
        max_length=256,
        max_completion_length=128,
        seed=cfg.seed,
        save_steps=20,
    )
    staged = f" per stage x {r.stages} stages" if r.stages > 1 else ""
    console.print(
        f"training {method} from the SFT model ({r.steps} steps{staged}, batch {cfg.pref_batch}, lr {r.lr:g}, "
        f"{r.loss_type} beta {r.beta:g}, {r.mining} pairs)",
        highlight=False,
    )
    say = lambda m: console.print(f"  {m}", highlight=False, markup=False)  # noqa: E731
    if r.stages > 1:
        from .stages import train_stages

        return train_stages(tc, r.stages, log=say)
    return train(tc, log=say)


def evaluate_all(cfg: DemoConfig, models: dict[str, Path], console: Console) -> dict[str, dict[str, Any]]:
    from stepdpo_bench.evaluate import EvalRequest, evaluate
    from stepdpo_bench.samplers import SamplingParams, make_sampler

    results = Path(cfg.out) / "results"
    runs: dict[str, dict[str, Any]] = {}
    for name, path in models.items():
        sampler = make_sampler("hf", str(path), batch_size=64, dtype="float32")
        try:
            reqs = [
                EvalRequest(
                    model=str(path),
                    task="arith",
                    limit=cfg.test_problems,
                    out_dir=results,
                    label=f"demo-{name}",
                    sampling=SamplingParams(max_tokens=64),
                )
            ]
            if cfg.data_dir:  # the real-task path: the same model on a GSM8K slice (it will score ~0)
                reqs.append(
                    EvalRequest(
                        model=str(path),
                        task="gsm8k",
                        data_dir=Path(cfg.data_dir),
                        limit=cfg.gsm8k_problems,
                        prompt="arith-step",
                        out_dir=results,
                        label=f"demo-{name}",
                        sampling=SamplingParams(max_tokens=64),
                    )
                )
            for req in reqs:
                res = evaluate(req, sampler, console)
                runs[f"{name}/{req.task}"] = {"run": res.run_dir, "manifest": res.manifest}
        finally:
            sampler.close()
    return runs


COMPARISONS = (
    ("sft", "dpo"),
    ("sft", "step-dpo"),
    ("sft", "scdpo"),
    ("sft", "sdpo"),
    ("dpo", "step-dpo"),
    ("step-dpo", "scdpo"),
    ("step-dpo", "sdpo"),
)


def compare_table(runs: dict[str, dict[str, Any]]) -> tuple[Table, list[dict[str, Any]]]:
    from stepdpo_bench.compare import paired, per_problem

    t = Table(title="Paired comparisons on arith test (same problems; Tango score interval and test)")
    for h in ("baseline", "candidate", "acc A %", "acc B %", "diff (pts)", "95% CI", "p", "fixed", "broken"):
        t.add_column(h, justify="left" if h in ("baseline", "candidate") else "right")
    rows = []
    scores = {k.split("/")[0]: per_problem(v["run"].read_samples()) for k, v in runs.items() if k.endswith("/arith")}
    for a, b in COMPARISONS:
        if a in scores and b in scores:
            p = paired(scores[a], scores[b])
            rows.append({"a": a, "b": b, **p.to_dict()})
            t.add_row(
                a,
                b,
                f"{100 * p.acc_a:.1f}",
                f"{100 * p.acc_b:.1f}",
                f"{100 * p.diff:+.1f}",
                f"{100 * p.ci95[0]:+.1f} to {100 * p.ci95[1]:+.1f}",
                f"{p.p_value:.3g}",
                str(p.n_fixed),
                str(p.n_broken),
            )
    return t, rows


def step_verdicts(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Step verdicts for every arith run by arith's exact truth (``stepdpo-bench steps --locator exact``): each
    model's step accuracy, right-for-wrong-reasons rate and first-error position with intervals, and the paired
    step differences of DPO and Step-DPO against SFT and each other."""
    from stepdpo_bench.reports import steps_table
    from stepdpo_bench.step_metrics import LABELS, compare_steps, join
    from stepdpo_bench.step_runs import LocatorSpec, locate_run

    spec = LocatorSpec("exact")
    done = {k.split("/")[0]: locate_run(v["run"], spec) for k, v in runs.items() if k.endswith("/arith")}
    sols = {k: join(r.run.read_samples(), _rows(r.path)) for k, r in done.items()}
    t = Table(title="Step differences on arith test (exact step truth; paired on problems; B − A)")
    for h in ("baseline", "candidate", "metric", "A", "B", "B − A", "95% CI", "p"):
        t.add_column(h, justify="left" if h in ("baseline", "candidate", "metric") else "right")
    paired_rows = []
    for a, b in COMPARISONS:
        if a not in sols or b not in sols:
            continue
        for d in compare_steps(sols[a], sols[b]):
            if d["metric"] not in ("step_accuracy", "right_for_wrong_reasons", "first_error_step"):
                continue
            paired_rows.append({**d, "baseline": a, "candidate": b})
            scale, fmt = (1, "{:+.2f}") if d["metric"] == "first_error_step" else (100, "{:+.1f}")
            lo, hi = d.get("ci95") or [None, None]
            va = done[a].summary["metrics"][d["metric"]]["value"]
            vb = done[b].summary["metrics"][d["metric"]]["value"]
            t.add_row(
                a,
                b,
                LABELS[d["metric"]],
                "-" if va is None else f"{scale * va:.1f}" if scale == 100 else f"{va:.2f}",
                "-" if vb is None else f"{scale * vb:.1f}" if scale == 100 else f"{vb:.2f}",
                "-" if d.get("diff") is None else fmt.format(scale * d["diff"]),
                "-" if lo is None else f"{fmt.format(scale * lo)} to {fmt.format(scale * hi)}",
                "-" if d.get("p") is None else f"{d['p']:.3g}",
            )
    return {
        "table": steps_table(list(done.values()), "Step verdicts on arith test (exact step truth)"),
        "paired_table": t,
        "metrics": {k: r.summary["metrics"] for k, r in done.items()},
        "paired": paired_rows,
    }


def _rows(path: Path) -> list[dict[str, Any]]:
    from stepdpo_bench.step_runs import StoredSteps

    return StoredSteps(path, {}).rows()


def locator_accuracy(pairs_dir: Path, same_as: str | None = None) -> dict[str, dict[str, Any]]:
    """Per locator: how often its located step is the exact first wrong step (arith truth), the samples spent
    and the steps of the solutions it saw.  ``same_as``: count only the solutions that locator saw (locators
    compared on the same solutions)."""
    from stepdpo_bench.runs import RunDir, read_log

    ptr = json.loads((pairs_dir / "collect.json").read_text())
    samples = {
        f"{s['problem_id']}#{s['sample_idx']}": s for s in RunDir(pairs_dir / "collect" / ptr["run_id"]).read_samples()
    }
    problems = {p.id: p for p in arith.generate("train").problems}
    rows = read_log(pairs_dir / "located.jsonl")
    keep = {r["key"] for r in rows if r["locator"] == same_as} if same_as else None
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if keep is not None and r["key"] not in keep:
            continue
        s = samples[r["key"]]
        truth = arith.first_wrong_step(problems[s["problem_id"]], list(s["steps"]))
        o = out.setdefault(
            r["locator"], {"solutions": 0, "located": 0, "exact": 0, "truth_none": 0, "spent": 0, "steps": 0}
        )
        o["solutions"] += 1
        o["spent"] += r.get("spent", 0)
        o["steps"] += len(s["steps"])
        o["truth_none"] += truth is None
        if r["step"] is not None:
            o["located"] += 1
            o["exact"] += r["step"] == truth
    for o in out.values():
        o["exact_of_located"] = o["exact"] / o["located"] if o["located"] else None
        o["exact_of_all"] = o["exact"] / o["solutions"] if o["solutions"] else None
    return out


@contextmanager
def pinned(threads: int) -> Iterator[None]:
    """A fixed thread count and deterministic kernels, restored afterwards: CPU reductions depend on how work is
    split over threads, so this is what makes the same seed give the same numbers on a machine; other CPUs may
    still differ in the last bits (docs/demo.md)."""
    import torch

    before, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(deterministic)


def run_demo(cfg: DemoConfig, console: Console | None = None, out_console: Console | None = None) -> dict[str, Any]:
    """All phases, pinned (same seed, same machine: same numbers)."""
    with pinned(cfg.threads):
        return _run_demo(cfg, console, out_console)


def _run_demo(cfg: DemoConfig, console: Console | None = None, out_console: Console | None = None) -> dict[str, Any]:
    """All phases; returns (and writes to ``OUT/summary.json``) what was measured.  Progress goes to ``console``
    (stderr), the leaderboard and comparisons to ``out_console`` (stdout)."""
    from stepdpo_bench.leaderboard import leaderboard, render
    from stepdpo_bench.store import connect, default_db, ingest

    console = console or Console(stderr=True)
    out_console = out_console or Console()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    console.rule("1/4  a tiny model, fine-tuned on arith")
    sft_dir = build_policy(cfg, console)
    timings["sft_s"] = time.perf_counter() - t0
    console.rule("2/4  the Step-DPO pair pipeline")
    funnel = run_pipeline(cfg, sft_dir, console)
    funnels = {"sampled": funnel}
    minings = {cfg.recipe(m).mining for m in METHODS}
    if "greedy" in minings:
        console.rule("2/4  greedy mining: the policy's own errors")
        funnels["greedy"] = run_pipeline(cfg, sft_dir, console, "greedy")
    if "controlled" in minings:
        console.rule("2/4  step-controlled mining (SCDPO): correct solutions corrupted from a chosen step")
        funnels["controlled"] = run_pipeline(cfg, sft_dir, console, "controlled")
    timings["pipeline_s"] = time.perf_counter() - t0 - sum(timings.values())
    if not funnels[cfg.step_dpo.mining].get("build", {}).get("step-dpo pairs"):
        raise RuntimeError("the pipeline produced no Step-DPO pairs; raise pipeline_problems or rectify_n")
    console.rule("3/4  DPO, Step-DPO, SCDPO and sDPO, each at its validated recipe")
    models = {"sft": sft_dir}
    for method in METHODS:
        models[method] = train_pair(cfg, method, sft_dir, console)
    timings["train_s"] = time.perf_counter() - t0 - sum(timings.values())
    curves = _share_training_logs(models, out / "results")
    console.rule("4/4  evaluation and leaderboard")
    runs = evaluate_all(cfg, models, console)
    steps = step_verdicts(runs)
    ingest(out / "results", log=lambda m: None)
    timings["eval_s"] = time.perf_counter() - t0 - sum(timings.values())
    con = connect(default_db(out / "results", None), read_only=True)
    try:
        out_console.print(render(leaderboard(con), "table"))
    finally:
        con.close()
    table, comparisons = compare_table(runs)
    out_console.print(table)
    out_console.print(steps["table"])
    out_console.print(steps["paired_table"])
    summary = {
        "config": asdict(cfg),
        "accuracy": {k: v["manifest"].metrics["accuracy"] for k, v in runs.items()},
        "comparisons": comparisons,
        "steps": {"metrics": steps["metrics"], "paired": steps["paired"]},
        "funnel": funnel,
        "funnel_greedy": funnels.get("greedy"),
        "funnel_controlled": funnels.get("controlled"),
        "locators": locator_accuracy(out / "pairs"),
        "timings_s": {**timings, "total_s": time.perf_counter() - t0},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    out_console.print(
        f"\nSee it in the app:  stepdpo-bench app --results {out / 'results'}"
        f"\nTraining curves: the app's Training page ({', '.join(curves)}, under {out / 'results'})"
        f"\nSummary: {out / 'summary.json'}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return summary


def _share_training_logs(models: dict[str, Path], results: Path) -> list[str]:
    """Copy each trained model's log and config (small files, not weights) to ``results/train-METHOD/``: ingest
    reads training logs from the results folder, so the printed app command shows the curves too."""
    import shutil

    from stepdpo_bench.contracts import TRAIN_CONFIG, TRAIN_LOG

    names = []
    for method, path in models.items():
        if method == "sft" or not all((path / n).is_file() for n in (TRAIN_LOG, TRAIN_CONFIG)):
            continue  # the SFT model's log is its own format
        dst = results / f"train-{method}"
        dst.mkdir(parents=True, exist_ok=True)
        for name in (TRAIN_LOG, TRAIN_CONFIG):
            shutil.copyfile(path / name, dst / name)
        names.append(dst.name)
    return names


def config_for(out: str, smoke: bool, seed: int, data_dir: str | None) -> DemoConfig:
    cfg = DemoConfig(out=out, seed=seed, data_dir=data_dir)
    if not smoke:
        return cfg
    return replace(
        cfg,
        **SMOKE,
        dpo=replace(cfg.dpo, steps=4),
        step_dpo=replace(cfg.step_dpo, steps=4),
        scdpo=replace(cfg.scdpo, steps=4),
        sdpo=replace(cfg.sdpo, steps=2),
    )
