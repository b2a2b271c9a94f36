"""DPO / Step-DPO training on transformers + accelerate: the whole loop on one screen.

Distribution is accelerate's job (``accelerate launch`` with a config from ``trainer/accelerate_configs``);
the loop only asks it to prepare, accumulate, clip, save and load.  Memory-lean by construction: the reference
model's log-probs are computed once before training (only one model in memory), and the LM head runs only on
completion positions (sequences are left-padded so completions end aligned; ``logits_to_keep`` does the rest).
"""

from __future__ import annotations

import json
import math
import os
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

REFERENCE = "reference_logps.json"  # the precomputed reference: [chosen, rejected] summed log-probs per encoded pair


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
    weight_decay: float = 0.0  # AdamW's decoupled decay; 0 as in transformers' Trainer and TRL
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
    log_steps: int = 10  # a progress line every N steps when stderr is not a terminal

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
        if self.loss_type == "nll" and self.rpo_alpha:
            raise ValueError("--rpo-alpha adds an NLL term on chosen; --loss-type nll is nothing but that term")
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
        if self.log_steps < 1:
            raise ValueError(f"--log-steps must be at least 1, not {self.log_steps}")
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
    """Train and save a checkpoint to ``cfg.out``; resumes from ``cfg.out/checkpoints/last`` when present.

    Multi-process (``accelerate launch`` / ``torchrun``): the schedule comes from the *prepared* loader (each
    process's share), the scheduler steps once per optimizer step, reference log-probs are computed by the
    prepared model under the same autocast (each rank its shard, gathered once), checkpoints are written by every
    rank and renamed by the main one between barriers, and the final weights are the gathered state dict.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed
    from transformers import get_cosine_schedule_with_warmup

    from stepdpo_bench import checkpoints

    out = Path(cfg.out)
    if _already_done(out, cfg):
        log(f"{out}: already trained with these settings ({_tag(out)['steps']} steps); nothing to do")
        return out
    gpu = torch.cuda.is_available()
    precision = "bf16" if (cfg.dtype == "bf16" or (cfg.dtype == "auto" and gpu)) else "no"
    import importlib.util

    tensorboard = importlib.util.find_spec("tensorboard") is not None  # curves in TensorBoard too, when installed
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # in-process callers (the demo, tests) train several times
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)  # each run gets its own precision and settings
    acc = Accelerator(
        cpu=not gpu,  # torchrun / accelerate launch on CPU hosts: accelerate only goes multi-process (gloo) when told
        gradient_accumulation_steps=cfg.grad_accum,
        mixed_precision=precision,
        log_with="tensorboard" if tensorboard else None,
        project_dir=str(out),
    )
    if acc.distributed_type == DistributedType.DEEPSPEED:  # DeepSpeed clips inside its engine, from its config
        acc.state.deepspeed_plugin.deepspeed_config["gradient_clipping"] = cfg.max_grad_norm
    set_seed(cfg.seed)
    say = log if acc.is_main_process else (lambda msg: None)
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
    say(f"{len(encoded)} pairs ({dropped} dropped: completion over {cfg.max_completion_length} tokens)")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.lora_r:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM"))
    frozen = None
    if cfg.reference == "frozen" and not cfg.lora_r:  # with LoRA the reference is the policy, adapter disabled
        frozen = checkpoints.load_model(ckpt, dtype=torch.float32).eval().requires_grad_(False)
    items = list(enumerate(encoded))
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(
        items, batch_size=cfg.batch_size, shuffle=True, generator=gen, collate_fn=lambda b: _collate(b, pad)
    )
    raw_opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    model, opt, loader = acc.prepare(model, raw_opt, loader)
    if frozen is not None:
        frozen = acc.prepare_model(frozen, evaluation_mode=True)
    # the schedule from what each process will really iterate: its share of the batches, per optimizer step
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    sched = get_cosine_schedule_with_warmup(raw_opt, int(cfg.warmup_ratio * total), total)
    acc.register_for_checkpointing(sched)  # stepped by hand, once per optimizer step
    ref = torch.zeros(len(encoded), 2)
    if cfg.reference == "precompute":  # the prepared model, before any update, under the training autocast
        ref = _reference_logps(acc, model, items, pad, cfg.batch_size, bool(cfg.lora_r), say)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.reference == "precompute":  # auditable: which model the margins are measured against, per pair
            (out / REFERENCE).write_text(json.dumps({"model": cfg.model, "logps": ref.tolist()}))
        (out / CONFIG).write_text(
            json.dumps({**asdict(cfg), "data_sha256": data_sha, "pairs": len(encoded), "dropped": dropped}, indent=1)
        )
    if tensorboard:
        acc.init_trackers("stepdpo")
    step, done_batches = 0, 0
    last = _last_checkpoint(out)
    if last is not None:  # resume: weights, optimizer, scheduler, RNG, and exactly the batches already done
        acc.load_state(str(last))
        mark = json.loads((last / "step.json").read_text())
        step, done_batches = mark["step"], mark.get("done_batches", mark["step"] * cfg.grad_accum)
        if acc.is_main_process:
            _truncate_log(out / LOG, step)
        say(f"resumed at step {step} of {total}")
    acc.wait_for_everyone()
    say(
        f"{total} optimizer steps ({steps_per_epoch} per epoch) of {cfg.batch_size} pairs x {cfg.grad_accum} "
        f"micro-batches x {acc.num_processes} processes ({acc.distributed_type.value.lower()}, "
        f"mixed precision {acc.mixed_precision})"
    )
    model.train()
    report = _Progress(total, step, log, acc.is_main_process, cfg.log_steps)
    t0, tokens = time.perf_counter(), 0
    sums = torch.zeros(6, device=acc.device)  # loss, chosen reward, rejected reward, correct, pairs, tokens
    try:
        while step < total:
            epoch, skip = divmod(done_batches, len(loader))
            gen.manual_seed(cfg.seed + epoch)  # the same order per epoch, before and after a resume
            it = acc.skip_first_batches(loader, skip) if skip else loader
            for batch in it:
                with acc.accumulate(model):
                    losses, cr, rj, lp, lens = _step_losses(acc, model, frozen, batch, ref, cfg)
                    loss = losses.mean()
                    if cfg.rpo_alpha:  # keeps the chosen text likely while the margin grows (likelihood displacement)
                        n = len(batch["index"])
                        loss = loss + cfg.rpo_alpha * (-(lp[:n] / lens[:n])).mean()
                    acc.backward(loss)
                    if acc.sync_gradients and acc.distributed_type != DistributedType.DEEPSPEED:
                        acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    opt.step()
                    opt.zero_grad()
                done_batches += 1
                sums += torch.stack(
                    [
                        losses.detach().sum(),
                        cr.sum(),
                        rj.sum(),
                        (cr > rj).float().sum(),
                        torch.tensor(float(len(cr)), device=cr.device),
                        batch["attention_mask"].sum().to(cr.device).float(),
                    ]
                ).to(sums.device)
                if not acc.sync_gradients:
                    continue
                lr_used = sched.get_last_lr()[0]  # the rate this optimizer step ran with
                sched.step()
                step += 1
                total_sums = acc.reduce(sums, "sum")  # the step's mean over micro-batches and processes
                sums.zero_()
                tokens += int(total_sums[5].item())
                k = max(total_sums[4].item(), 1.0)
                line = {
                    "step": step,
                    "loss": total_sums[0].item() / k,
                    "rewards/chosen": total_sums[1].item() / k,
                    "rewards/rejected": total_sums[2].item() / k,
                    "rewards/margins": (total_sums[1] - total_sums[2]).item() / k,
                    "rewards/accuracies": total_sums[3].item() / k,
                    "lr": lr_used,
                    "tokens_per_s": tokens / max(time.perf_counter() - t0, 1e-9),
                    "epoch": round(done_batches / len(loader), 4),
                }
                if acc.is_main_process:
                    with (out / LOG).open("a") as f:
                        f.write(json.dumps(line) + "\n")
                if tensorboard:
                    acc.log({k2: v for k2, v in line.items() if k2 != "step"}, step=step)
                report.update(line)
                if cfg.save_steps and step % cfg.save_steps == 0 and step < total:
                    _checkpoint(acc, out, step, done_batches)
                if step >= total:
                    break
    finally:
        report.close()
    _save_final(acc, model, tok, cfg, out, data_sha, step, ckpt)
    if tensorboard:
        acc.end_training()
    return out


def _step_losses(acc: Any, model: Any, frozen: Any, batch: dict[str, torch.Tensor], ref: torch.Tensor, cfg: Any):
    """Per-pair losses and rewards of one micro-batch, with the reference from the table, a frozen copy, or the
    policy with its LoRA adapter disabled."""
    lp, lens = completion_logps(model, batch)
    n = len(batch["index"])
    if cfg.reference == "frozen":
        with torch.no_grad(), acc.autocast():
            if frozen is not None:
                rlp, _ = completion_logps(frozen, batch)
            else:
                with acc.unwrap_model(model).disable_adapter():
                    rlp, _ = completion_logps(model, batch)
        rc, rr = rlp[:n], rlp[n:]
    else:
        r = ref.to(lp.device)[batch["index"].to(lp.device)]
        rc, rr = r[:, 0], r[:, 1]
    pc, pr = lp[:n], lp[n:]
    if cfg.loss_type in ("ipo", "nll"):  # IPO and the NLL control work on length-averaged log-probs
        pc, pr, rc, rr = pc / lens[:n], pr / lens[n:], rc / lens[:n], rr / lens[n:]
    losses, cr, rj = dpo_loss(pc, pr, rc, rr, cfg.beta, cfg.label_smoothing, cfg.loss_type, cfg.dpop_lambda)
    return losses, cr, rj, lp, lens


def _reference_logps(
    acc: Any, model: Any, items: list, pad: int, batch_size: int, lora: bool, say: Any
) -> torch.Tensor:
    """Reference log-probs of every pair by the prepared model (starting weights; adapter disabled with LoRA),
    under the training autocast, each process on its shard, gathered once to every process."""
    import contextlib

    loader = acc.prepare_data_loader(
        torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=lambda b: _collate(b, pad))
    )
    table = torch.zeros(len(items), 2)
    model.eval()
    off = acc.unwrap_model(model).disable_adapter if lora else contextlib.nullcontext
    t0 = time.perf_counter()
    with torch.no_grad(), acc.autocast(), off():
        for batch in loader:
            lp, _ = completion_logps(model, batch)
            n = len(batch["index"])
            idx = acc.gather(batch["index"].to(acc.device))
            vals = acc.gather(torch.stack([lp[:n], lp[n:]], dim=1).float().contiguous())
            table[idx.cpu()] = vals.cpu()  # the padding of uneven shards repeats pairs: same index, same value
    model.train()
    say(f"reference log-probs of {len(items)} pairs in {time.perf_counter() - t0:.1f} s")
    return table


class _Progress:
    """A progress bar with loss and reward accuracy on a terminal; a plain line every ``log_steps`` steps in CI
    logs and pipes (main process only)."""

    def __init__(self, total: int, start: int, log: Any, main: bool, log_steps: int) -> None:
        import sys

        self.total, self.log, self.main, self.every = total, log, main, max(1, log_steps)
        self.bar = None
        if main and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("train", total=total, completed=start, info="")
            self.bar.start()
        self.t0, self.start = time.perf_counter(), start

    def update(self, line: dict[str, Any]) -> None:
        if not self.main:
            return
        info = (
            f"loss {line['loss']:.4f}  margin {line['rewards/margins']:+.3f}  acc {line['rewards/accuracies']:.2f}  "
            f"{line['tokens_per_s']:.0f} tok/s"
        )
        if self.bar is not None:
            self.bar.update(self.task, completed=line["step"], info=info)
        elif line["step"] % self.every == 0 or line["step"] == self.total:
            done = line["step"] - self.start
            eta = (time.perf_counter() - self.t0) / max(done, 1) * (self.total - line["step"])
            self.log(f"step {line['step']}/{self.total}  {info}  eta {eta:.0f} s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _truncate_log(path: Path, step: int) -> None:
    """After a resume, drop log lines past the checkpoint (they will be written again)."""
    if path.is_file():
        keep = [x for x in path.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= step]
        path.write_text("".join(x + "\n" for x in keep))


def _last_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint: ``last``, or ``last.old`` when a kill fell between the two renames."""
    for name in ("last", "last.old"):
        d = out / "checkpoints" / name
        if (d / "step.json").is_file():
            return d
    return None


def _checkpoint(acc: Any, out: Path, step: int, done_batches: int) -> None:
    """Every rank writes its part of the state into ``last.tmp``; the main process marks it complete and swaps
    it in (last -> last.old, last.tmp -> last, drop last.old), with barriers so no rank races a rename."""
    import shutil

    root = out / "checkpoints"
    tmp, last, old = root / "last.tmp", root / "last", root / "last.old"
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # a torn write from a killed run
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "step.json").write_text(json.dumps({"step": step, "done_batches": done_batches}))
        if last.exists():
            if old.exists():
                shutil.rmtree(old)
            last.rename(old)
        tmp.rename(last)
        if old.exists():
            shutil.rmtree(old)
    acc.wait_for_everyone()


def _tag(out: Path) -> dict[str, Any]:
    try:
        tag = json.loads((out / TAG).read_text())
    except (OSError, ValueError):
        return {}
    return tag if isinstance(tag, dict) else {}


def _already_done(out: Path, cfg: TrainConfig) -> bool:
    """A finished run with the same settings: rerunning the command must not redo its last steps."""
    tag = _tag(out)
    return bool(tag) and tag.get("config") == asdict(cfg) and (out / "config.json").is_file()


def lora_from_state(state: dict[str, Any], ckpt: Any, cfg: TrainConfig) -> Any:
    """A full CPU copy of the LoRA policy from a gathered state dict (base and adapter weights), for merging on
    the main process when the live module holds only shards (ZeRO-3, FSDP)."""
    from peft import LoraConfig, get_peft_model

    from stepdpo_bench import checkpoints

    base = checkpoints.load_model(ckpt, dtype=torch.float32)
    full = get_peft_model(base, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM"))
    missing, unexpected = full.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "lora_" in k]:
        raise RuntimeError(
            f"gathered state does not fit the LoRA model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return full


def _save_final(
    acc: Any, model: Any, tok: Any, cfg: TrainConfig, out: Path, data_sha: str, step: int, ckpt: Any
) -> None:
    """The gathered state dict (every rank takes part: ZeRO-3 and FSDP hold shards), written by the main
    process; a LoRA adapter is merged into the base weights first."""
    from accelerate.utils import DistributedType

    acc.wait_for_everyone()
    sharded = acc.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    state = acc.get_state_dict(model)
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(model)
        if cfg.lora_r:
            if sharded:  # the local module holds shards: rebuild the adapter on a full CPU copy, then merge
                unwrapped = lora_from_state(state, ckpt, cfg)
            merged = unwrapped.merge_and_unload()
            merged.save_pretrained(out)
        else:
            unwrapped.save_pretrained(out, state_dict=state)
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
            "processes": acc.num_processes,
            "config": asdict(cfg),
        }
        (out / TAG).write_text(json.dumps(tag, indent=1))
        (out / "README.md").write_text(
            f"# {out.name}\n\nTrained with stepdpo-bench: **{cfg.method}** from `{cfg.model}` on `{cfg.data}` "
            f"(sha256 {data_sha[:12]}), {step} optimizer steps on {acc.num_processes} process(es).\n\n"
            + "\n".join(f"- {k}: {v}" for k, v in asdict(cfg).items())
            + "\n"
        )
    acc.wait_for_everyone()
