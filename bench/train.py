"""Trainer speed and memory: ours vs TRL's DPOTrainer, same tiny model, same pairs, matched settings.

    python bench/train.py [--steps 30] [--pairs 256]

Each trainer runs in its own process (so peak RSS is its own): full fine-tuning, fp32 on CPU, batch 8, the same
learning rate, beta and steps, reference log-probs precomputed by both.  The prompt TRL sees is exactly the
prompt ours builds (problem in the harness template + the earlier steps); TRL needs ``pip install trl``.
Prints steps/s over the whole job (load, tokenise, reference pass, train, save) and peak RSS, and the ratios ours / TRL.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_inputs(out: Path, n_pairs: int) -> tuple[Path, Path]:
    from stepdpo_bench.tasks import arith
    from stepdpo_bench.tiny import build_tiny_checkpoint

    ckpt = out / "bench-qwen2"
    corpus = [p.question + "\n" + (p.reference or "") for p in arith.generate("train", 2000).problems]
    if not (ckpt / "config.json").exists():
        build_tiny_checkpoint(ckpt, corpus, hidden_size=256, num_layers=4, num_heads=4, vocab_size=1024)
    pairs = out / "pairs.jsonl"
    rows = []
    for p in arith.generate("train", n_pairs).problems:
        *before, last = p.steps
        lhs, rhs = last.split(" = ")
        rows.append(
            {
                "prompt": p.question,
                "initial_reason_steps": "\n".join(before) + "\n",
                "chosen": last,
                "rejected": f"{lhs} = {int(rhs) + 3}",
            }
        )
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ckpt, pairs


def worker(which: str, ckpt: str, pairs: str, out: str, steps: int) -> None:
    """One trainer end to end: load model and data, precompute reference log-probs, train, save."""
    common = {"lr": 1e-4, "beta": 0.1, "batch": 8}
    t0 = time.perf_counter()
    if which == "ours":
        from trainer.train import TrainConfig, train

        train(
            TrainConfig(
                method="step-dpo",
                model=ckpt,
                data=pairs,
                out=out,
                max_steps=steps,
                lr=common["lr"],
                beta=common["beta"],
                batch_size=common["batch"],
                prompt="qwen2-boxed",
                dtype="fp32",
            ),
            log=lambda m: None,
        )
        wall = time.perf_counter() - t0
    else:
        import datasets
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import DPOConfig, DPOTrainer

        from trainer.data import load_pairs, prompt_text

        tok = AutoTokenizer.from_pretrained(ckpt)
        ps, _ = load_pairs(pairs, "step-dpo")
        ds = datasets.Dataset.from_list(
            [{"prompt": prompt_text(p, tok, "qwen2-boxed"), "chosen": p.chosen, "rejected": p.rejected} for p in ps]
        )
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        args = DPOConfig(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=common["batch"],
            learning_rate=common["lr"],
            beta=common["beta"],
            precompute_ref_log_probs=True,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=10,
        )
        trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
        trainer.train()
        trainer.save_model(out)
        wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"which": which, "wall_s": wall, "steps": steps, "peak_rss_mb": peak_mb}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "train")
    ap.add_argument("--worker", choices=("ours", "trl"))
    ap.add_argument("--model")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.data, str(args.out / f"run-{args.worker}-{time.time_ns()}"), args.steps)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt, pairs = make_inputs(args.out, args.pairs)
    results = {}
    for which in ("ours", "trl"):
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            which,
            "--model",
            str(ckpt),
            "--data",
            str(pairs),
            "--steps",
            str(args.steps),
            "--out",
            str(args.out),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"{which} failed:\n{res.stderr[-3000:]}")
        results[which] = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"{args.pairs} Step-DPO pairs, {args.steps} steps of batch 8, tiny Qwen2 (hidden 256, 4 layers), fp32 CPU")
    for which, r in results.items():
        rate = r["steps"] / r["wall_s"]
        print(f"{which:>5}: {rate:.2f} steps/s ({r['wall_s']:.1f} s), peak RSS {r['peak_rss_mb']:.0f} MB")
    o, t = results["ours"], results["trl"]
    print(f"ours / TRL: speed {t['wall_s'] / o['wall_s']:.2f}x, peak memory {o['peak_rss_mb'] / t['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
