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
) -> None:
    """Process each new complete checkpoint with ``process`` (evaluate + ingest + gate) and emit its line."""
    while True:
        for ckpt in complete_checkpoints(root, settle):
            if str(ckpt.resolve()) in state.done:
                continue
            line = process(ckpt)
            state.record(ckpt, line)
            emit(line)
        if once:
            return
        time.sleep(interval)
