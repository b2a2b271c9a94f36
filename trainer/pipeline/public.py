"""Bring published step pairs (``xinlai/Math-Step-DPO-10K`` from the Hub, or its file) into our pairs format,
through the same contamination guard, so they train and compare exactly like pairs we mined ourselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.data import PairsError, read_pair_records

from .contamination import build_index

FIELDS = ("prompt", "initial_reason_steps", "chosen", "rejected")


def import_pairs(
    source: str, guard: list[str], data_dir: str | None, ngram: int = 13
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(kept rows, dropped rows with reasons, warnings).  Every row must have the four pair fields as text."""
    records, digest = read_pair_records(source)
    rows = []
    for i, (where, r) in enumerate(records):
        for k in FIELDS:
            v = r.get(k, "" if k == "initial_reason_steps" else None)
            if not isinstance(v, str) or (k != "initial_reason_steps" and not v.strip()):
                raise PairsError(f"{where}: field {k!r} is missing or not text")
        rows.append(
            {
                "dataset": r.get("dataset") or Path(source).name,
                **{k: r.get(k) or "" for k in FIELDS},
                "full_chosen": r.get("full_chosen"),
                "full_rejected": r.get("full_rejected"),
                "answer": r.get("answer"),
                "problem_id": str(r.get("problem_id") or f"{source}#{i}"),
                "locator": "external",
                "confidence": None,
                "source": source,
                "source_sha256": digest,
            }
        )
    if not guard:
        return rows, [], []
    index, warnings = build_index(guard, data_dir, ngram)
    kept, dropped = [], []
    for r in rows:
        why = index.match(r["prompt"])
        if why:
            dropped.append({"problem_id": r["problem_id"], "reason": why})
        else:
            kept.append(r)
    return kept, dropped, warnings
