"""Continuous evaluation: notice checkpoints as a training job saves them, evaluate, ingest, gate.

A checkpoint directory counts as complete once it has a config and weights and nothing in it has changed for
``settle`` seconds (trainers write shards one by one).  Progress is recorded in ``<results>/watch_state.json``
after each checkpoint, and runs are content-addressed anyway, so a restarted watcher re-evaluates nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .runs import atomic_write_text

WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


def _step(path: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)$", path.name)
    return (int(m.group(1)) if m else -1, path.name)


def complete_checkpoints(root: Path, settle: float) -> list[Path]:
    """Checkpoint directories under ``root`` (or ``root`` itself) that are fully written, oldest step first."""
    cands = [p for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    if (root / "config.json").is_file():
        cands.append(root)
    now = time.time()
    out = []
    for d in cands:
        if not (d / "config.json").is_file() or not any(any(d.glob(w)) for w in WEIGHTS):
            continue
        newest = max(f.stat().st_mtime for f in d.rglob("*") if f.is_file())
        if now - newest >= settle:
            out.append(d)
    return sorted(out, key=_step)


class WatchState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}

    def record(self, ckpt: Path, line: dict[str, Any]) -> None:
        self.done[str(ckpt.resolve())] = line
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.done, indent=1))


def watch(
    root: Path,
    state: WatchState,
    process: Callable[[Path], dict[str, Any]],
    *,
    interval: float = 60.0,
    settle: float = 30.0,
    once: bool = False,
    emit: Callable[[dict[str, Any]], None] = print,
) -> int:
    """Process each new complete checkpoint with ``process`` (evaluate + ingest + gate) and emit its line.
    With ``once``, one scan; returns how many checkpoints it processed."""
    n = 0
    while True:
        for ckpt in complete_checkpoints(root, settle):
            if str(ckpt.resolve()) in state.done:
                continue
            line = process(ckpt)
            state.record(ckpt, line)
            emit(line)
            n += 1
        if once:
            return n
        time.sleep(interval)


def evaluate_checkpoint(
    ckpt: Path,
    tasks: list[str],
    results: Path,
    sampler_opts: Any,
    *,
    data_dir: Path | None,
    limit: int | None,
    prompt: str | None,
    max_tokens: int,
    method: str,
    baseline: str | None,
    max_drop: float,
    min_problems: int,
) -> dict[str, Any]:
    """Evaluate one checkpoint on every task, gate each run against ``baseline`` (alpha split over the tasks),
    ingest the results; return the checkpoint's line (accuracy and verdict per task)."""
    from rich.console import Console

    from . import gate
    from .evaluate import EvalRequest, evaluate
    from .samplers import SamplingParams, sampler_from_options
    from .store import default_db, ingest

    sampler = sampler_from_options(str(ckpt), sampler_opts)
    line: dict[str, Any] = {"checkpoint": ckpt.name, "tasks": {}}
    try:
        for t in tasks:
            req = EvalRequest(
                model=str(ckpt),
                task=t,
                data_dir=data_dir,
                limit=limit,
                prompt=prompt,
                sampling=SamplingParams(max_tokens=max_tokens),
                out_dir=results,
                method=method,
                label=f"{ckpt.parent.name}/{ckpt.name}",
            )
            res = evaluate(req, sampler, Console(stderr=True, quiet=True))
            entry: dict[str, Any] = {"run_id": res.run_dir.run_id, "accuracy": res.manifest.metrics["accuracy"]}
            if baseline:
                try:
                    v = gate.judge(
                        gate.resolve(baseline, results, t),
                        res.run_dir,
                        max_drop=max_drop,
                        alpha=0.05 / len(tasks),
                        min_problems=min_problems,
                    )
                    entry["gate"] = v.verdict
                except gate.GateError as exc:
                    entry["gate"] = f"unusable: {exc}"
            line["tasks"][t] = entry
    finally:
        sampler.close()
    ingest(results, default_db(results, None))
    return line
