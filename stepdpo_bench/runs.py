"""Runs are files: ``results/<run_id>/run.json`` + ``samples.jsonl`` (appended, fsynced) -> ``samples.parquet``.

A run id is a hash of everything that determines the samples (model identity, task data checksum and problem
set, rendered prompt template, sampling parameters, backend, grader version), so the same command finds its own
directory again: a finished run is reused, an interrupted one resumed.  A crash can at worst leave a torn last
line in ``samples.jsonl``; it is cut off on resume, and samples are de-duplicated on (problem_id, sample_idx).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .manifest import Manifest, ManifestError

MANIFEST = "run.json"
SAMPLES_JSONL = "samples.jsonl"
SAMPLES_PARQUET = "samples.parquet"

SAMPLE_FIELDS = (
    "run_id",
    "problem_id",
    "sample_idx",
    "prompt",
    "completion",
    "steps",
    "pred",
    "gold",
    "correct",
    "reason",
    "finish_reason",
    "n_tokens",
    "subject",
    "level",
    "other_correct",
    "other_pred",
    "method",
    "reasoning",
    "reasoning_tokens",
)  # (other_*: an imported tool's own verdict and extracted answer; method: the extraction rule; reasoning: a
#    thinking trace, kept apart from the graded completion, and its token count)


class RunError(ValueError):
    """A run directory that cannot be used (missing, corrupt): one line naming the file."""


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def make_run_id(identity: dict[str, Any]) -> str:
    """``<model>__<task>__<hash>``: readable in a directory listing, unique by content."""
    digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]
    model = Path(str(identity["model"]["name_or_path"]).rstrip("/")).name or "model"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model)[:40].strip("-") or "model"
    task = re.sub(r"[^A-Za-z0-9._-]+", "-", str(identity["task"]["name"]))[:30]
    return f"{slug}__{task}__{digest}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file + fsync + rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_log(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append JSON lines and fsync: a kill loses at most the write in flight.  A torn final line from an earlier
    kill is cut first, so appends always start on a fresh line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size:
        with path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.truncate(path.read_bytes().rfind(b"\n") + 1)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_log(path: Path) -> list[dict[str, Any]]:
    """The complete lines of an append-only JSONL log (a torn tail is ignored); a corrupt line names file:line."""
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # torn tail: ignored, cut on the next append
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise RunError(f"{path}:{lineno}: corrupt line; delete it (or the file) and rerun") from None
    return out


class RunDir:
    """One run's directory: its manifest and its samples."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def manifest(self) -> Manifest | None:
        """The typed manifest, None when there is no run.json; RunError (naming the file and the field) when it is
        unreadable or malformed."""
        p = self.path / MANIFEST
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunError(
                f"{p}: corrupt manifest ({exc.msg}, line {exc.lineno} column {exc.colno}); "
                "rerun the eval to rewrite it, or delete the run directory"
            ) from None
        except UnicodeDecodeError:
            raise RunError(f"{p}: not UTF-8 text; delete the run directory or restore the file") from None
        except OSError as exc:
            raise RunError(f"{p}: cannot read ({exc.strerror or exc}); check its permissions") from None
        try:
            return Manifest.from_dict(data, str(p))
        except ManifestError as exc:
            raise RunError(f"{exc}; not a manifest this version can read") from None

    def write_manifest(self, manifest: Manifest) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False, default=str)
        atomic_write_text(self.path / MANIFEST, text)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the run's write lock: a second writer of the same run fails fast instead of interleaving."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunError(f"{self.path}: another process is writing this run; wait for it or kill it") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read_samples(self) -> list[dict[str, Any]]:
        """Finished samples, de-duplicated; from parquet when compacted, else from the jsonl log."""
        pq = self.path / SAMPLES_PARQUET
        if pq.is_file():
            import pyarrow.parquet as papq

            return papq.read_table(pq).to_pylist()
        seen: set[tuple[str, int]] = set()
        out = []
        for rec in read_log(self.path / SAMPLES_JSONL):
            key = (rec["problem_id"], rec["sample_idx"])
            if key not in seen:
                seen.add(key)
                out.append(rec)
        return out

    def append_samples(self, samples: Iterable[dict[str, Any]]) -> None:
        append_log(self.path / SAMPLES_JSONL, samples)

    def compact(self, samples: list[dict[str, Any]]) -> None:
        """Write ``samples.parquet`` (atomically) from the finished samples; the jsonl log stays as written."""
        import pyarrow as pa
        import pyarrow.parquet as papq

        rows = [{k: s.get(k) for k in SAMPLE_FIELDS} for s in samples]
        for r in rows:
            r["subject"] = None if r["subject"] is None else str(r["subject"])
            r["level"] = None if r["level"] is None else str(r["level"])
        schema = pa.schema(
            [
                ("run_id", pa.string()),
                ("problem_id", pa.string()),
                ("sample_idx", pa.int32()),
                ("prompt", pa.string()),
                ("completion", pa.string()),
                ("steps", pa.list_(pa.string())),
                ("pred", pa.string()),
                ("gold", pa.string()),
                ("correct", pa.bool_()),
                ("reason", pa.string()),
                ("finish_reason", pa.string()),
                ("n_tokens", pa.int32()),
                ("subject", pa.string()),
                ("level", pa.string()),
                ("other_correct", pa.bool_()),
                ("other_pred", pa.string()),
                ("method", pa.string()),
                ("reasoning", pa.string()),
                ("reasoning_tokens", pa.int32()),
            ]
        )
        table = pa.Table.from_pylist(rows, schema=schema)
        tmp = self.path / f".{SAMPLES_PARQUET}.tmp"
        papq.write_table(table, tmp)
        os.replace(tmp, self.path / SAMPLES_PARQUET)

    def drop_parquet(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / SAMPLES_PARQUET).unlink()


def resolve_run(ref: str, out_dir: Path) -> RunDir:
    """A run given as a directory path or as a run id under ``out_dir``."""
    for cand in (Path(ref), Path(out_dir) / ref):
        if (cand / MANIFEST).is_file():
            return RunDir(cand)
    raise RunError(f"{ref}: no run found (looked for {ref}/{MANIFEST} and {Path(out_dir) / ref / MANIFEST})")
