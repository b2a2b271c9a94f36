"""What a task is: problems with gold answers, the answer convention to grade them by, and the data's checksum."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TaskError(ValueError):
    """Bad task input (unknown name, missing file, malformed record): its message is shown as is, on one line."""


@dataclass(frozen=True)
class Problem:
    """One evaluation problem.  ``id`` is stable across runs and sources (the source's own id where it has one)."""

    id: str
    question: str
    gold: str
    subject: str | None = None
    level: str | None = None
    reference: str | None = None  # full reference solution, when the data has one
    steps: tuple[str, ...] | None = None  # exact ground-truth steps (synthetic tasks)
    repairs: tuple[str, ...] = ()  # what the loader repaired in this record's text (aime25's lost backslashes)


@dataclass
class Task:
    """A loaded task.  ``convention`` selects the grader's answer convention (math, gsm8k, odyssey, arith)."""

    name: str
    convention: str
    split: str
    problems: list[Problem]
    data_sha256: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.problems)

    def filtered(
        self,
        limit: int | None = None,
        subjects: Iterable[str] | None = None,
        levels: Iterable[str] | None = None,
        problem_ids: Iterable[str] | None = None,
    ) -> Task:
        """Subset by explicit ids, subject/level (case-insensitive), then the first ``limit`` (order is stable)."""
        probs = self.problems
        if problem_ids is not None:
            wanted = set(problem_ids)
            probs = [p for p in probs if p.id in wanted]
        if subjects:
            want = {s.strip().lower() for s in subjects}
            probs = [p for p in probs if (p.subject or "").lower() in want]
        if levels:
            want_l = {str(x).strip().lower().removeprefix("level ") for x in levels}
            probs = [p for p in probs if str(p.level or "").lower().removeprefix("level ") in want_l]
        if limit is not None:
            probs = probs[:limit]
        return Task(self.name, self.convention, self.split, probs, self.data_sha256, self.source, dict(self.meta))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_records(records: Iterable[dict[str, Any]]) -> str:
    """Checksum of records from a non-file source (the Hub, a generator): canonical JSON lines."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n")
    return h.hexdigest()


def json_kind(value: Any) -> str:
    """A value's JSON type name for messages: ``null``, ``array``, ``object``, ``string``, ``number``, ``boolean``."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (dict, "object"), (list, "array"), (str, "string"), (int | float, "number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record); a malformed line raises TaskError naming file:line."""
    if not path.is_file():
        raise TaskError(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise TaskError(f"{path}:{lineno}: expected a JSON object, got {json_kind(rec)}")
            yield lineno, rec


def require(rec: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``rec[key]``, or TaskError naming file:line and the field: missing, null, or not of ``kind``."""
    if key not in rec:
        raise TaskError(f"{where}: missing field {key!r} (fields present: {', '.join(sorted(rec)) or 'none'})")
    value = rec[key]
    if value is None:
        raise TaskError(f"{where}: field {key!r} is null")
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise TaskError(f"{where}: field {key!r} should be {want}, not {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise TaskError(f"{where}: field {key!r} is empty")
    return value
