"""DPO / Step-DPO training on transformers + accelerate: the whole loop on one screen.

Distribution is accelerate's job (``accelerate launch`` with a config from ``trainer/accelerate_configs``);
the loop only asks it to prepare, accumulate, clip, save and load.  Memory-lean by construction: the reference
model's log-probs are computed once before training (only one model in memory), and the LM head runs only on
completion positions (sequences are left-padded so completions end aligned; ``logits_to_keep`` does the rest).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from stepdpo_bench.contracts import TRAIN_CONFIG as CONFIG
from stepdpo_bench.contracts import TRAIN_LOG as LOG
from stepdpo_bench.contracts import TRAIN_TAG as TAG  # read by `eval` to tag the leaderboard

from .data import Encoded, encode, load_pairs
from .loss import dpo_loss


@dataclass
class TrainConfig:
    method: str
    model: str
    data: str
    out: str
    epochs: float = 1.0
    max_steps: int | None = None
    beta: float = 0.1
    lr: float = 5e-7
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    label_smoothing: float = 0.0
    dpop_lambda: float = 50.0  # loss_type dpop: weight of the penalty on chosen falling below the reference
    rpo_alpha: float = 0.0  # weight of an NLL term on the chosen completion (RPO; TRL's rpo_alpha)
    loss_type: str = "sigmoid"
    reference: str = "precompute"  # precompute | frozen | none
    prompt: str = "qwen2-boxed"
    max_length: int = 1024
    max_completion_length: int = 512
    seed: int = 42
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    gradient_checkpointing: bool = False
    lora_r: int = 0
    lora_alpha: int = 16
    save_steps: int = 0

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> TrainConfig:
        """Settings from a YAML/JSON file (any field, ``batch_size`` or ``batch-size``), then ``overrides`` that are
        not None (the command line wins).  Unknown keys, missing required ones and wrong types are refused with
        one line naming the file and the key."""
        from dataclasses import fields

        names = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        if path is not None:
            values = _read_settings(Path(path))
            unknown = sorted(set(values) - set(names))
            if unknown:
                raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(names)}")
        values.update({k.replace("-", "_"): v for k, v in overrides.items() if v is not None})
        missing = [k for k in ("method", "model", "data", "out") if not values.get(k)]
        if missing:
            raise ValueError(f"missing {', '.join('--' + k for k in missing)} (on the command line or in --config)")
        where = str(path) if path else "options"
        for k, v in values.items():
            values[k] = _coerce(k, v, names[k].type, where)
        return cls(**values).validate()

    def validate(self) -> TrainConfig:
        """Refuse values and combinations that make no sense, rather than ignoring them."""
        from .data import METHODS
        from .loss import LOSS_TYPES

        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: choose from {', '.join(METHODS)}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"--loss-type {self.loss_type!r}: choose from {', '.join(LOSS_TYPES)}")
        if self.reference not in ("precompute", "frozen", "none"):
            raise ValueError(f"--reference {self.reference!r}: choose from precompute, frozen, none")
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ValueError(f"--dtype {self.dtype!r}: choose from auto, bf16, fp32")
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError(f"--label-smoothing applies to the sigmoid loss, not --loss-type {self.loss_type}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"--label-smoothing must be in [0, 0.5), not {self.label_smoothing}")
        if self.loss_type == "dpop" and self.reference == "none":
            raise ValueError("--loss-type dpop needs a reference (its penalty is on chosen falling below it)")
        for name, low in (("beta", 0.0), ("lr", 0.0), ("epochs", 0.0)):
            if getattr(self, name) <= low:
                raise ValueError(f"--{name} must be positive, not {getattr(self, name)}")
        for name in ("batch_size", "grad_accum", "max_length", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max-steps must be at least 1, not {self.max_steps}")
        if self.save_steps < 0 or self.lora_r < 0 or self.rpo_alpha < 0 or self.dpop_lambda < 0:
            raise ValueError("--save-steps, --lora-r, --rpo-alpha and --dpop-lambda cannot be negative")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        return self


def _read_settings(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        raise ValueError(
            f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} "
            f"({str(exc).splitlines()[0][:120]})"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _coerce(name: str, value: Any, kind: Any, where: str) -> Any:
    """A setting into its field's type (YAML numbers like 5e-7 arrive as text)."""
    kind = str(kind)
    try:
        if kind.startswith("bool"):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("str"):
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be {kind.split()[0]}, not {value!r}") from None
    return value


def _collate(batch: list[tuple[int, Encoded]], pad: int) -> dict[str, torch.Tensor]:
    """Chosen rows then rejected rows, left-padded; completion mask over the last K positions."""
    seqs, comps = [], []
    for _, e in batch:
        seqs.append(e.prompt + e.chosen)
        comps.append(len(e.chosen))
    for _, e in batch:
        seqs.append(e.prompt + e.rejected)
        comps.append(len(e.rejected))
    width = max(map(len, seqs))
    k = max(comps)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), k), dtype=torch.float32)
    for i, (s, c) in enumerate(zip(seqs, comps, strict=True)):
        ids[i, width - len(s) :] = torch.tensor(s)
        attn[i, width - len(s) :] = 1
        mask[i, k - c :] = 1
    return {
        "input_ids": ids,
        "attention_mask": attn,
        "completion_mask": mask,
        "index": torch.tensor([i for i, _ in batch]),
    }


def completion_logps(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob of each row's completion tokens, and the completion lengths.  Only the last K+1
    positions get logits: a full-vocabulary log-softmax over the whole sequence is what runs out of memory."""
    mask = batch["completion_mask"]
    k = mask.shape[1]
    attn = batch["attention_mask"]
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # left padding: positions start at each row's first token
    out = model(input_ids=batch["input_ids"], attention_mask=attn, position_ids=position_ids, logits_to_keep=k + 1)
    logits = out.logits[:, :-1, :].float()  # position t predicts token t+1: the last K tokens
    labels = batch["input_ids"][:, -k:]
    logp = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1)
    return (logp * mask).sum(-1), mask.sum(-1)


def train(cfg: TrainConfig, log: Any = print) -> Path:
    """Train and save a checkpoint to ``cfg.out``; resumes from ``cfg.out/checkpoints/last`` when present."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    from stepdpo_bench import checkpoints

    out = Path(cfg.out)
    gpu = torch.cuda.is_available()
    precision = "bf16" if (cfg.dtype == "bf16" or (cfg.dtype == "auto" and gpu)) else "no"
    import importlib.util

    tensorboard = importlib.util.find_spec("tensorboard") is not None  # curves in TensorBoard too, when installed
    acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        mixed_precision=precision,
        log_with="tensorboard" if tensorboard else None,
        project_dir=str(out),
    )
    set_seed(cfg.seed)
    ckpt = checkpoints.inspect(cfg.model)
    tok = checkpoints.load_tokenizer(ckpt)
    pairs, data_sha = load_pairs(cfg.data, cfg.method)
    model = checkpoints.load_model(ckpt, dtype=torch.float32)
    eos = checkpoints.eos_ids(model, tok)
    pad = checkpoints.pad_id(tok, eos)
    encoded, dropped = encode(
        pairs, tok, cfg.method, cfg.prompt, cfg.max_length, cfg.max_completion_length, eos[0] if eos else None
    )
    if not encoded:
        raise ValueError(
            f"all {len(pairs)} pairs were dropped as too long (max_completion_length "
            f"{cfg.max_completion_length}); raise the limits"
        )
    log(f"{len(encoded)} pairs ({dropped} dropped: completion over {cfg.max_completion_length} tokens)")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM"))
    items = list(enumerate(encoded))
    ref = torch.zeros(len(encoded), 2)
    frozen = None
    if cfg.reference == "precompute":  # one pass with the starting weights, before any update
        model.eval()
        with torch.no_grad():
            for start in range(0, len(items), cfg.batch_size):
                b = _collate(items[start : start + cfg.batch_size], pad)
                lp, _ = completion_logps(model, b)
                n = len(b["index"])
                ref[b["index"], 0], ref[b["index"], 1] = lp[:n], lp[n:]
    elif cfg.reference == "frozen":
        frozen = checkpoints.load_model(ckpt, dtype=torch.float32).eval().requires_grad_(False)
    elif cfg.reference != "none":
        raise ValueError(f"reference must be precompute, frozen or none, not {cfg.reference!r}")
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(
        items, batch_size=cfg.batch_size, shuffle=True, generator=gen, collate_fn=lambda b: _collate(b, pad)
    )
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    model, opt, loader, sched = acc.prepare(model, opt, loader, sched)
    if frozen is not None:
        frozen = frozen.to(acc.device)
    out.mkdir(parents=True, exist_ok=True)
    if tensorboard:
        acc.init_trackers("stepdpo")
    (out / CONFIG).write_text(
        json.dumps({**asdict(cfg), "data_sha256": data_sha, "pairs": len(encoded), "dropped": dropped}, indent=1)
    )
    step, done_batches = 0, 0
    last = out / "checkpoints" / "last"
    if (last / "step.json").is_file():  # resume: weights, optimizer, scheduler, RNG; skip the batches done
        acc.load_state(str(last))
        step = json.loads((last / "step.json").read_text())["step"]
        done_batches = step * cfg.grad_accum
        _truncate_log(out / LOG, step)
        log(f"resumed at step {step}")
    model.train()
    t0, tokens = time.perf_counter(), 0
    while step < total:
        epoch_batches = done_batches % len(loader)
        gen.manual_seed(cfg.seed + done_batches // len(loader))  # the same order per epoch, before and after resume
        it = acc.skip_first_batches(loader, epoch_batches) if epoch_batches else loader
        for batch in it:
            with acc.accumulate(model):
                lp, lens = completion_logps(model, batch)
                n = len(batch["index"])
                if frozen is not None:
                    with torch.no_grad():
                        rlp, _ = completion_logps(frozen, batch)
                    rc, rr = rlp[:n], rlp[n:]
                else:
                    r = ref.to(lp.device)[batch["index"]]
                    rc, rr = r[:, 0], r[:, 1]
                pc, pr = lp[:n], lp[n:]
                if cfg.loss_type == "ipo":  # IPO works on length-averaged log-probs
                    pc, pr, rc, rr = pc / lens[:n], pr / lens[n:], rc / lens[:n], rr / lens[n:]
                losses, cr, rj = dpo_loss(pc, pr, rc, rr, cfg.beta, cfg.label_smoothing, cfg.loss_type, cfg.dpop_lambda)
                loss = losses.mean()
                if cfg.rpo_alpha:  # keeps the chosen text likely while the margin grows (likelihood displacement)
                    loss = loss + cfg.rpo_alpha * (-(lp[:n] / lens[:n])).mean()
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad()
            tokens += int(batch["attention_mask"].sum())
            done_batches += 1
            if not acc.sync_gradients:
                continue
            step += 1
            line = {
                "step": step,
                "loss": loss.item(),
                "rewards/chosen": cr.mean().item(),
                "rewards/rejected": rj.mean().item(),
                "rewards/margins": (cr - rj).mean().item(),
                "rewards/accuracies": (cr > rj).float().mean().item(),
                "lr": sched.get_last_lr()[0],
                "tokens_per_s": tokens / max(time.perf_counter() - t0, 1e-9),
            }
            if acc.is_main_process:
                with (out / LOG).open("a") as f:
                    f.write(json.dumps(line) + "\n")
            if tensorboard:
                acc.log({k: v for k, v in line.items() if k != "step"}, step=step)
            if cfg.save_steps and step % cfg.save_steps == 0:
                _checkpoint(acc, last, step)
            if step >= total:
                break
    _save_final(acc, model, tok, cfg, out, data_sha, step)
    if tensorboard:
        acc.end_training()
    return out


def _truncate_log(path: Path, step: int) -> None:
    """After a resume, drop log lines past the checkpoint (they will be written again)."""
    if path.is_file():
        keep = [x for x in path.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= step]
        path.write_text("".join(x + "\n" for x in keep))


def _checkpoint(acc: Any, last: Path, step: int) -> None:
    tmp = last.with_name("last.tmp")
    acc.save_state(str(tmp))
    (tmp / "step.json").write_text(json.dumps({"step": step}))
    if last.exists():
        import shutil

        shutil.rmtree(last)
    tmp.rename(last)


def _save_final(acc: Any, model: Any, tok: Any, cfg: TrainConfig, out: Path, data_sha: str, step: int) -> None:
    acc.wait_for_everyone()
    model = acc.unwrap_model(model)
    if cfg.lora_r:
        model = model.merge_and_unload()
    if acc.is_main_process:
        model.save_pretrained(out)
        tok.save_pretrained(out)
        tag = {
            "method": cfg.method,
            "base_model": cfg.model,
            "data": cfg.data,
            "data_sha256": data_sha,
            "steps": step,
            "beta": cfg.beta,
            "lr": cfg.lr,
            "loss_type": cfg.loss_type,
            "reference": cfg.reference,
        }
        (out / TAG).write_text(json.dumps(tag, indent=1))
        (out / "README.md").write_text(
            f"# {out.name}\n\nTrained with stepdpo-bench: **{cfg.method}** from `{cfg.model}` on `{cfg.data}` "
            f"(sha256 {data_sha[:12]}), {step} optimizer steps.\n\n"
            + "\n".join(f"- {k}: {v}" for k, v in asdict(cfg).items())
            + "\n"
        )
