"""The hf backend at long budgets: does checking stop strings cost more per token as the text grows?

    python bench/hf_long.py [--budgets 256,1024,3584] [--prompts 4] [--data-dir ../shared/data]

A reasoning model's run asks for tens of thousands of tokens per sample with the template's stop strings on.
A stop check that decodes the whole text every step is quadratic: its share of the time grows with the budget.
This runs the same greedy generation on a tiny Qwen2 checkpoint (built here; it never emits EOS, so every row
runs to its budget) with and without stop strings, in this process, alternating, best of 3, and prints tokens per
second and the ratio with/without at each budget (goal: flat, near 1.00x).  Measured here (2 cores, budgets
256 / 1024 / 3584): transformers' matcher 1.00x / 1.10x / 1.02x, ours 1.06x / 1.04x / 0.99x: no growth.
Both matchers are measured: transformers' ``StopStringCriteria`` (the default) and our decoded-tail
``_TextStop`` (the fallback for tokenizers that break transformers' tables, put in the sampler's matcher cache
here).  The tiny model's context is 4096 tokens, so budgets stop below that; neither matcher's per-step cost
depends on the context.  (A row that stops early leaves its batch generating until the longest row ends: that
is transformers' static batching, a cost at long budgets this does not measure; vLLM has no such cost.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# stop strings the tiny model's text never contains: every leg generates the same tokens, so the difference is
# the matcher's cost alone (a row that stops early would leave its batch running and blur the figure)
STOPS = ("<|never_end|>", "\n\n\nQuestion #:", "</never>", "####")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="256,1024,3584")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from stepdpo_bench.samplers import SamplingParams
    from stepdpo_bench.samplers import hf as hf_mod
    from stepdpo_bench.samplers.hf import HFSampler
    from stepdpo_bench.tiny import build_tiny_checkpoint

    rows = [json.loads(x) for x in (args.data_dir / "gsm8k" / "test.jsonl").open()][: args.prompts]
    questions = [r["question"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_checkpoint(Path(tmp) / "tiny", questions * 50)
        sampler = HFSampler(str(ckpt), batch_size=args.prompts, dtype="float32")
        prompts = [f"Question: {q}\nAnswer:" for q in questions]

        def run(budget: int, stops: tuple[str, ...], force_text: bool) -> tuple[float, int]:
            sampler._stop_cache.clear()
            if force_text:  # the fallback matcher, as for a tokenizer transformers' matcher rejects
                sampler._stop_cache[stops] = hf_mod._TextStop(sampler.tokenizer, stops)
            t0 = time.perf_counter()
            outs = sampler.generate(prompts, SamplingParams(max_tokens=budget, stop=stops))
            return time.perf_counter() - t0, sum(c.n_tokens for cs in outs for c in cs)

        table = Table(title="hf backend: greedy tokens/s with and without stop strings (best of 3)")
        for col in ("budget", "tokens", "no stops", "StopStringCriteria", "ratio", "_TextStop", "ratio"):
            table.add_column(col, justify="right")
        for budget in (int(b) for b in args.budgets.split(",")):
            rate: dict[str, float] = {}  # tokens per second, best of 3 (a stop hit ends a row early: per token)
            tokens: dict[str, int] = {}
            for _ in range(3):
                for name, stops, force in (("none", (), False), ("hf", STOPS, False), ("text", STOPS, True)):
                    dt, n = run(budget, stops, force)
                    tokens[name] = n
                    rate[name] = max(rate.get(name, 0.0), n / dt)
            table.add_row(
                str(budget),
                str(tokens["none"]) if len(set(tokens.values())) == 1 else "/".join(map(str, tokens.values())),
                f"{rate['none']:.0f}",
                f"{rate['hf']:.0f}",
                f"{rate['none'] / rate['hf']:.2f}x",
                f"{rate['text']:.0f}",
                f"{rate['none'] / rate['text']:.2f}x",
            )
        Console().print(table)
        print(
            "ratio: time per token with stop strings / without, same budget; flat across budgets = no quadratic check"
        )


if __name__ == "__main__":
    main()
