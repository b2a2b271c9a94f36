"""Supervised fine-tuning on worked solutions: how the demo turns a random tiny model into a policy worth correcting.

Step-DPO starts from a model that already writes ``Step k:`` solutions and makes step errors.  The demo has no
Hub model to start from, so it builds one: the problem rendered with the harness's prompt template (the same
string ``eval`` sends), the reference solution after it, loss on the solution tokens only.  A plain torch loop:
the model is small and the machine is a CPU, so there is nothing for accelerate to distribute.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stepdpo_bench.checkpoints import encode_completion, encode_prompt
from stepdpo_bench.prompts import get_template
from stepdpo_bench.tasks import Problem

from .train import LOG, TAG


@dataclass
class SFTConfig:
    model: str
    out: str
    prompt: str = "arith-step"
    steps: int = 400
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 10
    # stop by loss instead of by step count: hold the learning rate after warmup until the running mean of the
    # training loss reaches ``target_loss`` (``steps`` becomes a cap), then decay it linearly to 0 over
    # ``cooldown`` steps.  A fixed step count ends each seed wherever its learning happens to be (seeds that learn
    # slower end far worse, and a last-bit difference in a reduction can move a run across that edge); ending
    # at a loss ends every run at the same point of learning.
    target_loss: float | None = None
    cooldown: int = 100
    ema: float = 0.95  # the running mean's decay (about 20 steps)


def sft_examples(problems: Sequence[Problem], prompt: str, tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, solution ids + EOS) per problem with a reference solution.  The template's assistant prefix
    (``Step 1: ``) is already in the prompt, so it is cut from the front of the reference."""
    template = get_template(prompt)
    out = []
    for p in problems:
        if not p.reference:
            raise ValueError(f"problem {p.id}: no reference solution to fine-tune on")
        ref = p.reference.removeprefix(template.assistant_prefix)
        head = template.template.format(question=p.question)
        ids_p = encode_prompt(tokenizer, head)
        ids_c = [*encode_completion(tokenizer, ref), tokenizer.eos_token_id]
        out.append((ids_p, ids_c))
    return out


def sft(cfg: SFTConfig, problems: Sequence[Problem], log: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Fine-tune ``cfg.model`` on ``problems``; save a checkpoint to ``cfg.out`` with a loss log beside it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    tok = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=torch.float32)
    data = sft_examples(problems, cfg.prompt, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    plan = _Plan(cfg)
    sched = (
        get_cosine_schedule_with_warmup(opt, cfg.warmup, cfg.steps)
        if cfg.target_loss is None
        else torch.optim.lr_scheduler.LambdaLR(opt, plan.factor)
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG).unlink(missing_ok=True)
    model.train()
    t0 = time.perf_counter()
    order: list[int] = []
    step = 0
    while step < plan.last:
        step += 1
        if len(order) < cfg.batch_size:
            fresh = list(range(len(data)))
            rng.shuffle(fresh)
            order += fresh
        batch = [data[i] for i in order[: cfg.batch_size]]
        del order[: cfg.batch_size]
        width = max(len(a) + len(b) for a, b in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (a, b) in enumerate(batch):  # right padding; labels only on the solution
            seq = a + b
            ids[r, : len(seq)] = torch.tensor(seq)
            labels[r, len(a) : len(seq)] = torch.tensor(b)
            attn[r, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        plan.observe(step, loss.item())  # before the scheduler asks for the next step's rate
        sched.step()
        opt.zero_grad()
        if step % cfg.log_every == 0 or step == plan.last:
            line = {
                "step": step,
                "loss": loss.item(),
                "loss_ema": plan.mean,
                "lr": sched.get_last_lr()[0],
                "steps_per_s": step / max(time.perf_counter() - t0, 1e-9),
            }
            with (out / LOG).open("a") as f:
                f.write(json.dumps(line) + "\n")
            if log:
                log(line)
        if not math.isfinite(loss.item()):
            raise ValueError(f"SFT diverged at step {step} (loss {loss.item()}); lower the learning rate")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    tag = {
        "method": "sft",
        "base_model": cfg.model,
        **asdict(cfg),
        "steps": step,
        "steps_cap": cfg.steps,
        "examples": len(data),
        "target_reached_at": plan.stop_at,
    }
    (out / TAG).write_text(json.dumps(tag, indent=1))
    return out


class _Plan:
    """The learning-rate plan of a loss-targeted run: warmup, hold until the running loss reaches the target (or
    the cap leaves only the cooldown), then a linear cooldown to 0.  ``last`` is the final step once known."""

    def __init__(self, cfg: SFTConfig) -> None:
        self.cfg = cfg
        self.mean: float | None = None
        self.stop_at: int | None = None
        self.last = cfg.steps

    def observe(self, step: int, loss: float) -> None:
        c = self.cfg
        self.mean = loss if self.mean is None else c.ema * self.mean + (1 - c.ema) * loss
        if c.target_loss is None or self.stop_at is not None:
            return
        if (step > c.warmup and self.mean <= c.target_loss) or step >= c.steps - c.cooldown:
            self.stop_at = step
            self.last = step + c.cooldown

    def factor(self, step: int) -> float:
        """LambdaLR's multiplier for the step about to run (``step`` optimizer steps done)."""
        c = self.cfg
        if step < c.warmup:
            return (step + 1) / c.warmup
        if self.stop_at is None:
            return 1.0
        return max(0.0, 1 - (step - self.stop_at) / c.cooldown)
