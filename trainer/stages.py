"""Staged preference training (sDPO, Kim et al. 2024, arXiv 2403.19270): the data in stages, where the model of
stage t-1 is both the starting point and the reference of stage t.

Stages come from a list of data files (one per stage, in order: e.g. easier problems first) or from one file cut
into N contiguous parts (``--stages N``; a problem's pairs stay in one part, so the file's order is the stages'
order).  Each stage is an ordinary ``train`` run: it precomputes its reference log-probs from the model it starts
from, which is the previous stage's output, and resumes or skips on its own.  Stages 1..N-1 land in
``OUT/stages/stage-I``; the last stage is ``OUT`` itself, a checkpoint whose tag records every stage.
``max_steps`` / ``epochs`` apply per stage.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stepdpo_bench.contracts import TRAIN_LOG as LOG
from stepdpo_bench.contracts import TRAIN_TAG as TAG

from .data import PairsError, read_pair_records
from .train import TrainConfig, train

STAGES_FILE = "stages.json"


def split_records(source: str, n: int) -> list[list[dict[str, Any]]]:
    """``source``'s records in ``n`` contiguous parts of near-equal size, never splitting one problem's pairs."""
    records = [r for _, r in read_pair_records(source)[0]]
    if n < 2:
        raise ValueError(f"--stages {n}: staged training needs at least 2 stages")
    groups: list[list[dict[str, Any]]] = []
    for r in records:  # consecutive records of one problem form a group
        pid = r.get("problem_id") or r.get("prompt")
        if groups and (groups[-1][0].get("problem_id") or groups[-1][0].get("prompt")) == pid:
            groups[-1].append(r)
        else:
            groups.append([r])
    if len(groups) < n:
        raise ValueError(f"{source}: {len(groups)} problems cannot fill {n} stages")
    parts: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    total, seen = len(records), 0
    for g in groups:
        parts[min(n - 1, seen * n // total)].extend(g)
        seen += len(g)
    if any(not p for p in parts):
        raise ValueError(f"{source}: cannot cut {total} pairs into {n} non-empty stages")
    return parts


def _write_if_changed(path: Path, text: str) -> None:
    """Every process writes the same split; a process-unique temp name keeps their renames from colliding."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def stage_data(cfg: TrainConfig, stages: int | None) -> list[str]:
    """The data file of each stage: ``cfg.data`` as a comma-separated list (one file per stage) or, with
    ``stages``, one file cut into that many parts under ``OUT/stages/``."""
    files = [x.strip() for x in cfg.data.split(",") if x.strip()]
    if stages is None:
        if len(files) < 2:
            raise ValueError("staged training needs --stages N or --data with 2 or more comma-separated files")
        return files
    if len(files) != 1:
        raise ValueError(f"--stages {stages} cuts one data file into stages; got {len(files)} files")
    out = []
    for i, part in enumerate(split_records(files[0], stages), 1):
        path = Path(cfg.out) / "stages" / f"data-{i}.jsonl"
        _write_if_changed(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
        out.append(str(path))
    return out


def train_stages(cfg: TrainConfig, stages: int | None = None, log: Any = print) -> Path:
    """Train every stage in order (each from, and referenced to, the previous stage's model); returns ``cfg.out``,
    the last stage's checkpoint.  A rerun skips finished stages and resumes the one in flight."""
    if cfg.reference == "none":
        raise ValueError(
            "staged training (sDPO) references each stage to the previous stage's model; "
            "--reference none has no reference: use precompute or frozen"
        )
    try:
        files = stage_data(cfg, stages)
    except PairsError as exc:
        raise ValueError(str(exc)) from None
    out = Path(cfg.out)
    model, record = cfg.model, []
    for i, data in enumerate(files, 1):
        last = i == len(files)
        dest = out if last else out / "stages" / f"stage-{i}"
        log(f"stage {i}/{len(files)}: {data} from {model} (also its reference)")
        sc = replace(cfg, model=model, data=data, out=str(dest))
        train(sc, log=lambda m, i=i: log(f"[stage {i}] {m}"))
        tag = json.loads((dest / TAG).read_text())
        record.append(
            {
                "stage": i,
                "data": data,
                "data_sha256": tag.get("data_sha256"),
                "model": model,
                "reference": model,
                "out": str(dest),
                "steps": tag.get("steps"),
                "last_log": _last_line(dest / LOG),
            }
        )
        model = str(dest)
    if int(os.environ.get("RANK", "0")) == 0:
        tag = json.loads((out / TAG).read_text())
        tag["stages"] = record
        tag["staged_config"] = asdict(cfg)
        (out / TAG).write_text(json.dumps(tag, indent=1))
        (out / STAGES_FILE).write_text(json.dumps(record, indent=1))
    return out


def _last_line(path: Path) -> dict[str, Any]:
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}
