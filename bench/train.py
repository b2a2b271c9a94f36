"""Trainer speed and memory: ours vs TRL's DPOTrainer, same tiny model, same pairs, matched settings.

    python bench/train.py [--steps 30] [--pairs 256] [--runs 3]      # speed: small vocabulary, batch 8
    python bench/train.py --vocab 151936                            # memory: Qwen2's vocabulary, long prompts

Each trainer runs in its own process (so peak RSS is its own): full fine-tuning, fp32 on CPU (TRL's default bf16
autocast is switched off: matched precision), the same learning rate, beta, batch and steps, reference log-probs
precomputed by both.  The prompt TRL sees is exactly the prompt ours builds (problem in the harness template + the
earlier steps); TRL is in the dev extras.  The contestants alternate order run after run (``--runs`` each) and the
medians are printed: wall time of the whole job (load, tokenise, reference pass, train, save), steps/s and peak
RSS, and the ratios ours / TRL.  ``--vocab`` resizes the tiny model's embeddings to a real vocabulary (the
tokenizer stays small; only the LM head's cost matters) and pads prompts to about 1000 tokens, the case where
materialising logits is what costs memory.  On a CPU TRL's fused LM head scores every position (its compact path
needs Triton), so one TRL run there takes about 8 minutes: hence the small defaults.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_inputs(out: Path, n_pairs: int, vocab: int | None) -> tuple[Path, Path]:
    from stepdpo_bench.tasks import arith
    from stepdpo_bench.tiny import build_tiny_checkpoint

    ckpt = out / ("bench-qwen2" if vocab is None else f"bench-qwen2-v{vocab}")
    corpus = [p.question + "\n" + (p.reference or "") for p in arith.generate("train", 2000).problems]
    if not (ckpt / "config.json").exists():
        build_tiny_checkpoint(ckpt, corpus, hidden_size=256, num_layers=4, num_heads=4, vocab_size=1024, init_std=0.02)
        if vocab is not None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(ckpt)
            model.resize_token_embeddings(vocab)
            model.save_pretrained(ckpt)
    pairs = out / ("pairs.jsonl" if vocab is None else "pairs-long.jsonl")
    rows = []
    problems = arith.generate("train", n_pairs).problems
    for i, p in enumerate(problems):
        *before, last = p.steps
        lhs, rhs = last.split(" = ")
        # long mode: earlier problems as worked context, so prompts run to about 1000 tokens
        context = "" if vocab is None else "".join(q.question + "\n" for q in (problems * 20)[i + 1 : i + 40]) + "\n"
        rows.append(
            {
                "prompt": context + p.question,
                "initial_reason_steps": "\n".join(before) + "\n",
                "chosen": last,
                "rejected": f"{lhs} = {int(rhs) + 3}",
            }
        )
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ckpt, pairs


def worker(which: str, ckpt: str, pairs: str, out: str, steps: int, batch: int) -> None:
    """One trainer end to end: load model and data, precompute reference log-probs, train, save."""
    common = {"lr": 1e-4, "beta": 0.1, "batch": batch}
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
                max_length=2048,
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
            max_length=2048,
            use_cpu=True,
            bf16=False,  # TRL defaults to bf16 autocast, which on a CPU without AMX is several times slower than fp32
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
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (30; 2 with --vocab)")
    ap.add_argument("--pairs", type=int, default=None, help="pairs in the data (256; 8 with --vocab)")
    ap.add_argument("--runs", type=int, default=None, help="runs of each, alternating order (3; 1 with --vocab)")
    ap.add_argument("--vocab", type=int, default=None, help="resize the model to this vocabulary (memory mode)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "train")
    ap.add_argument("--worker", choices=("ours", "trl"))
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args()
    steps = args.steps or (2 if args.vocab else 30)
    runs = args.runs or (1 if args.vocab else 3)
    batch = args.batch or (4 if args.vocab else 8)
    if args.worker:
        out = str(args.out / f"run-{args.worker}-{time.time_ns()}")
        worker(args.worker, args.model, args.data, out, steps, batch)
        shutil.rmtree(out, ignore_errors=True)  # weights are not kept
        return
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt, pairs = make_inputs(args.out, args.pairs or (8 if args.vocab else 256), args.vocab)
    results: dict[str, list[dict]] = {"ours": [], "trl": []}
    for run in range(runs):
        for which in ("ours", "trl") if run % 2 == 0 else ("trl", "ours"):
            cmd = [sys.executable, __file__, "--worker", which, "--model", str(ckpt), "--data", str(pairs)]
            cmd += ["--steps", str(steps), "--batch", str(batch), "--out", str(args.out)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise SystemExit(f"{which} failed:\n{res.stderr[-3000:]}")
            results[which].append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = results[which][-1]
            print(f"  run {run + 1} {which:>4}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    shape = f"vocabulary {args.vocab}, prompts ~1000 tokens" if args.vocab else "vocabulary 1024"
    print(f"{len(pairs.read_text().splitlines())} Step-DPO pairs, {steps} steps of batch {batch}, tiny Qwen2 ")
    print(f"(hidden 256, 4 layers, {shape}), fp32 CPU, medians of {runs} run(s) each, order alternating")
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "peak_rss_mb")} for w, rs in results.items()}
    for which, m in med.items():
        rate = steps / m["wall_s"]
        print(f"{which:>5}: {rate:.2f} steps/s ({m['wall_s']:.1f} s), peak RSS {m['peak_rss_mb']:.0f} MB")
    o, t = med["ours"], med["trl"]
    print(f"ours / TRL: speed {t['wall_s'] / o['wall_s']:.2f}x, peak memory {o['peak_rss_mb'] / t['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
