"""The leaderboard index: run files -> one DuckDB file (``results/leaderboard.duckdb``).

DuckDB is an index, never the only copy (DESIGN principle 1): ``ingest`` can always rebuild it from the run
directories.  It is idempotent (a run whose manifest has not changed is skipped; a re-graded or later-finished
run replaces its rows in one transaction), and safe when several jobs ingest at once: DuckDB allows one writer
per file, so writers take an exclusive lock file next to the database and wait their turn.  A half-written or
corrupt run directory is skipped with a warning naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import Manifest
from .runs import MANIFEST, SAMPLES_PARQUET, RunDir, RunError

DEFAULT_DB = "leaderboard.duckdb"
SCHEMA_VERSION = 3  # bump with any schema change: connect() rebuilds an older index from the run files

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, status VARCHAR, created_at TIMESTAMPTZ, updated_at VARCHAR, source VARCHAR,
    model VARCHAR, label VARCHAR, method VARCHAR, base_model VARCHAR, fingerprint VARCHAR,
    task VARCHAR, split VARCHAR, n_problems INTEGER, data_sha256 VARCHAR, problems_sha VARCHAR, subset BOOLEAN,
    filters JSON,
    prompt VARCHAR, backend VARCHAR, temperature DOUBLE, top_p DOUBLE, max_tokens INTEGER, n INTEGER, seed INTEGER,
    grader_version VARCHAR, lenient BOOLEAN, code_version VARCHAR,
    accuracy DOUBLE, stderr DOUBLE, ci_lo DOUBLE, ci_hi DOUBLE, n_correct INTEGER, n_samples INTEGER,
    invalid_rate DOUBLE, truncation_rate DOUBLE, mean_tokens DOUBLE,
    tags VARCHAR[], metrics JSON, manifest JSON, manifest_sha VARCHAR, path VARCHAR, ingested_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS samples (
    run_id VARCHAR, problem_id VARCHAR, sample_idx INTEGER, prompt VARCHAR, completion VARCHAR,
    pred VARCHAR, gold VARCHAR, correct BOOLEAN, reason VARCHAR, finish_reason VARCHAR, n_tokens INTEGER,
    subject VARCHAR, level VARCHAR, other_correct BOOLEAN, other_pred VARCHAR, method VARCHAR
);
CREATE TABLE IF NOT EXISTS problem_scores (  -- per-problem mean correctness, for fast paired statistics
    run_id VARCHAR, problem_id VARCHAR, pkey UBIGINT, score DOUBLE
);
CREATE TABLE IF NOT EXISTS steps (
    run_id VARCHAR, problem_id VARCHAR, sample_idx INTEGER, step_idx INTEGER, text VARCHAR
);
CREATE TABLE IF NOT EXISTS training_log (
    run_name VARCHAR, method VARCHAR, step INTEGER, loss DOUBLE, reward_chosen DOUBLE, reward_rejected DOUBLE,
    reward_margin DOUBLE, reward_accuracy DOUBLE, lr DOUBLE, path VARCHAR
);
"""


class StoreError(RuntimeError):
    """The index cannot be opened or written (locked too long, not a DuckDB file)."""


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (directory, why)


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise StoreError("the leaderboard needs duckdb: pip install 'stepdpo-bench[app]'") from None
    return duckdb


@contextlib.contextmanager
def writer_lock(db: Path, timeout: float = 600.0) -> Iterator[None]:
    """One writer at a time across processes: an exclusive lock on ``<db>.lock``, waiting up to ``timeout``."""
    lock_path = db.with_name(db.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(f"{db}: another ingest held the lock for {timeout:g}s; try again") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def connect(db: Path, read_only: bool = False) -> Any:
    """Open the index.  Readers open read-only (the app never writes); a missing file is created by writers."""
    duckdb = _duckdb()
    db = Path(db)
    if read_only and not db.exists():
        raise StoreError(f"{db}: no leaderboard yet; run `stepdpo-bench ingest {db.parent}` first")
    try:
        con = duckdb.connect(str(db), read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(f"{db}: cannot open ({str(exc).splitlines()[0][:160]})") from None
    if not read_only:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row and row[0] != str(SCHEMA_VERSION):  # an index from another version: rebuilt from the run files
            for table in ("runs", "samples", "steps", "problem_scores", "training_log"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(SCHEMA)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    return con


def _run_row(run: RunDir, m: Manifest) -> list[Any]:
    met = m.metrics
    ci = met.get("ci95") or [None, None]
    tags = [t for t in (m.model.method, m.source) if t] + list(m.model.tags)
    return [
        m.run_id,
        m.status,
        m.created_at,
        m.updated_at,
        m.source,
        m.model.name_or_path,
        m.model.display,
        m.model.method,
        m.model.base_model,
        m.model.fingerprint,
        m.task.name,
        m.task.split,
        m.task.n_problems,
        m.task.data_sha256,
        m.task.problems_sha,
        m.task.subset,
        json.dumps(m.task.filters),
        m.prompt.name,
        m.sampling.backend,
        m.sampling.temperature,
        m.sampling.top_p,
        m.sampling.max_tokens,
        m.sampling.n,
        m.sampling.seed,
        m.grader_version,
        m.grader.lenient,
        m.code_version,
        met.get("accuracy"),
        met.get("stderr"),
        ci[0],
        ci[1],
        met.get("n_correct"),
        met.get("n_samples"),
        met.get("invalid_rate"),
        met.get("truncation_rate"),
        met.get("mean_tokens"),
        tags,
        json.dumps(met),
        json.dumps(m.to_dict(), default=str),
        manifest_sha(run),
        str(run.path.resolve()),
    ]


def manifest_sha(run: RunDir) -> str:
    """Change detection by content: any rewrite of run.json (finish, regrade, retag) re-ingests the run."""
    return hashlib.sha256((run.path / MANIFEST).read_bytes()).hexdigest()


def _check_run(run: RunDir) -> Manifest:
    m = run.manifest()
    if m is None:
        raise RunError(f"{run.path}: no {MANIFEST}")
    if not m.done:
        raise RunError(f"{run.path}: run is {m.status!r}, not done (still running, or failed: rerun to finish)")
    if not (run.path / SAMPLES_PARQUET).is_file():
        raise RunError(f"{run.path}: {SAMPLES_PARQUET} missing")
    if m.run_id != run.run_id:
        raise RunError(f"{run.path}: run.json says run_id {m.run_id!r}, directory says {run.run_id!r}")
    return m


def ingest(results: Path, db: Path | None = None, *, log: Any = None) -> IngestReport:
    """Index every finished run under ``results`` (and training logs under it) into ``db``."""
    results = Path(results)
    db = Path(db) if db else results / DEFAULT_DB
    report = IngestReport()
    if not results.is_dir():
        raise StoreError(f"{results}: no such results directory")
    candidates = sorted(p.parent for p in results.glob(f"*/{MANIFEST}"))
    with writer_lock(db):
        con = connect(db)
        try:
            known = dict(con.execute("SELECT run_id, manifest_sha FROM runs").fetchall())
            for path in candidates:
                run = RunDir(path)
                try:
                    m = _check_run(run)
                except (RunError, ValueError, KeyError, TypeError) as exc:
                    report.skipped.append((str(path), str(exc)))
                    if log:
                        log(f"warning: skipped {exc}")
                    continue
                rid = m.run_id
                if known.get(rid) == manifest_sha(run):
                    report.unchanged.append(rid)
                    continue
                try:
                    _load_run(con, run, m)
                except Exception as exc:  # a corrupt parquet file must not abort the other runs
                    report.skipped.append((str(path), f"{type(exc).__name__}: {str(exc)[:160]}"))
                    if log:
                        log(f"warning: skipped {path}: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                (report.replaced if rid in known else report.added).append(rid)
            _load_training_logs(con, results)
        finally:
            con.close()
    return report


def _load_run(con: Any, run: RunDir, m: Manifest) -> None:
    """Replace one run's rows atomically: readers see the old run or the new one, never half."""
    pq = str((run.path / SAMPLES_PARQUET).resolve())
    rid = m.run_id
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("runs", "samples", "steps", "problem_scores"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [rid])
        row = _run_row(run, m)
        con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(row))}, now())", row)
        cols = {c[0] for c in con.execute("SELECT name FROM parquet_schema(?)", [pq]).fetchall()}
        other = "other_correct" if "other_correct" in cols else "NULL::BOOLEAN"
        other_pred = "other_pred" if "other_pred" in cols else "NULL::VARCHAR"
        method = "method" if "method" in cols else "NULL::VARCHAR"  # runs graded before grader 2.0 have none
        con.execute(
            f"""INSERT INTO samples SELECT ?, problem_id, sample_idx, prompt, completion, pred, gold, correct, reason,
                finish_reason, n_tokens, subject, level, {other}, {other_pred}, {method} FROM read_parquet(?)""",
            [rid, pq],
        )
        con.execute(
            """INSERT INTO problem_scores SELECT ?, problem_id, hash(problem_id), avg(correct::INTEGER)
               FROM read_parquet(?) GROUP BY problem_id""",
            [rid, pq],
        )
        con.execute(
            """INSERT INTO steps SELECT ?, problem_id, sample_idx, generate_subscripts(steps, 1) - 1, unnest(steps)
               FROM read_parquet(?)""",
            [rid, pq],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _load_training_logs(con: Any, results: Path) -> None:
    """Trainer logs (``*/train_log.jsonl`` with a sibling ``train_config.json``) when present."""
    logs = sorted(results.glob("*/train_log.jsonl"))
    if not logs:
        return
    # skip the reload when no log changed since the last ingest (size and mtime of every file)
    sig = hashlib.sha256("\n".join(f"{p}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in logs).encode()).hexdigest()
    row = con.execute("SELECT value FROM meta WHERE key = 'training_logs'").fetchone()
    if row and row[0] == sig:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('training_logs', ?)", [sig])
        con.execute("DELETE FROM training_log")
        for log in logs:
            cfg_path = log.with_name("train_config.json")
            method = json.loads(cfg_path.read_text()).get("method") if cfg_path.is_file() else None
            rows = []
            for line in log.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line of a live training job
                rows.append(
                    [
                        log.parent.name,
                        method,
                        r.get("step"),
                        r.get("loss"),
                        r.get("rewards/chosen"),
                        r.get("rewards/rejected"),
                        r.get("rewards/margins"),
                        r.get("rewards/accuracies"),
                        r.get("lr"),
                        str(log),
                    ]
                )
            if rows:
                con.executemany(f"INSERT INTO training_log VALUES ({', '.join('?' * 10)})", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def default_db(results: Path | None, db: Path | None) -> Path:
    if db:
        return Path(db)
    return Path(results or os.environ.get("STEPDPO_RESULTS", "results")) / DEFAULT_DB
