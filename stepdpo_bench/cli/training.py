"""``train`` and ``demo``: the face's only doors into the trainer."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import app, fail, note, say


@app.command()
def train(
    method: str = typer.Option(None, "--method", help="step-dpo | dpo (required, here or in --config)."),
    model: str = typer.Option(None, "--model", help="Base checkpoint (directory, LoRA adapter or Hub id)."),
    data: str = typer.Option(
        None,
        "--data",
        help="Pairs JSONL/JSON (Math-Step-DPO-10K fields) or a Hub dataset id; A,B,C: one file per sDPO stage.",
    ),
    stages: int = typer.Option(
        None,
        "--stages",
        help="sDPO: cut --data into N stages in file order; each starts from and is referenced to the previous one.",
    ),
    out: Path = typer.Option(None, "--out", help="Output checkpoint directory (resumes if it has checkpoints)."),
    config: Path = typer.Option(
        None,
        "--config",
        help="YAML/JSON with any option below as a key (batch_size or batch-size); the command line wins.",
    ),
    epochs: float = typer.Option(None, help="Epochs (default 1)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Optimizer steps (overrides epochs)."),
    beta: float = typer.Option(None, help="DPO beta (default 0.1)."),
    lr: float = typer.Option(None, help="Learning rate (default 5e-7)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Pairs per micro-batch (default 8)."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Gradient accumulation steps (default 1)."),
    loss_type: str = typer.Option(None, "--loss-type", help="sigmoid | ipo | dpop (DPO-Positive) | nll (a control)."),
    dpop_lambda: float = typer.Option(None, "--dpop-lambda", help="dpop: penalty weight (default 50)."),
    label_smoothing: float = typer.Option(None, "--label-smoothing", help="sigmoid only: conservative DPO."),
    rpo_alpha: float = typer.Option(None, "--rpo-alpha", help="Weight of an NLL term on chosen (RPO; default 0)."),
    reference: str = typer.Option(None, help="precompute | frozen | none (reference-free)."),
    prompt: str = typer.Option(None, help="Harness prompt template for the problem (default qwen2-boxed), or chat."),
    max_length: int = typer.Option(None, "--max-length"),
    max_completion_length: int = typer.Option(None, "--max-completion-length"),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (0 = full fine-tuning)."),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    save_steps: int = typer.Option(None, "--save-steps", help="Checkpoint every N steps (resume point)."),
    log_steps: int = typer.Option(None, "--log-steps", help="A progress line every N steps off a terminal (10)."),
    seed: int = typer.Option(None),
    dtype: str = typer.Option(None, help="auto | bf16 | fp32."),
) -> None:
    """Train DPO or Step-DPO from a base checkpoint (run under `accelerate launch` to scale out)."""
    from trainer.data import PairsError
    from trainer.train import TrainConfig
    from trainer.train import train as do_train

    from ..samplers import SamplerError

    try:
        cfg = TrainConfig.load(
            config,
            method=method,
            model=model,
            data=data,
            out=str(out) if out else None,
            epochs=epochs,
            max_steps=max_steps,
            beta=beta,
            lr=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            loss_type=loss_type,
            dpop_lambda=dpop_lambda,
            label_smoothing=label_smoothing,
            rpo_alpha=rpo_alpha,
            reference=reference,
            prompt=prompt,
            max_length=max_length,
            max_completion_length=max_completion_length,
            lora_r=lora_r,
            gradient_checkpointing=gradient_checkpointing,
            save_steps=save_steps,
            log_steps=log_steps,
            seed=seed,
            dtype=dtype,
        )
        if stages is not None or "," in cfg.data:
            from trainer.stages import train_stages

            path = train_stages(cfg, stages, log=note)
        else:
            path = do_train(cfg, log=note)
    except (PairsError, SamplerError, ValueError, OSError) as exc:
        fail(str(exc))
    say(f"checkpoint written to {path}; evaluate it with: stepdpo-bench eval --model {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("results/demo"), "--out", help="Everything lands here; re-running resumes."),
    smoke: bool = typer.Option(False, "--smoke", help="The same code path at toy sizes (about a minute)."),
    seed: int = typer.Option(0, help="Seed for the model, data order and sampling."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Local data (../shared/data) for a GSM8K slice too."),
) -> None:
    """The whole Step-DPO story on a CPU: tiny model + SFT, pair pipeline, DPO vs Step-DPO, eval, leaderboard."""
    from trainer.demo import config_for, run_demo
    from trainer.pipeline.config import PipelineError

    from ..samplers import SamplerError
    from ..tasks import TaskError
    from .common import console, err

    try:
        run_demo(config_for(str(out), smoke, seed, str(data_dir) if data_dir else None), err, console)
    except (PipelineError, SamplerError, TaskError, RuntimeError, ValueError) as exc:
        fail(f"demo stopped: {exc} (finished phases are kept; rerun the same command to resume)")
