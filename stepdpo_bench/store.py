"""The leaderboard index: run files -> one DuckDB file (``results/leaderboard.duckdb``).

DuckDB is an index, never the only copy (DESIGN principle 1): ``ingest`` can always rebuild it from the run
directories.  It is idempotent (a run whose manifest has not changed is skipped; a re-graded or later-finished
run replaces its rows in one transaction), and safe when several jobs ingest at once: DuckDB allows one writer
per file, so writers take an exclusive lock file next to the database and wait their turn.  A half-written or
corrupt run directory is skipped with a warning naming it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contracts import TRAIN_CONFIG, TRAIN_LOG
from .manifest import Manifest
from .runs import MANIFEST, SAMPLES_PARQUET, RunDir, RunError
from .step_runs import STEPS_DIR, SUMMARY_JSON, finished_steps

DEFAULT_DB = "leaderboard.duckdb"
SCHEMA_VERSION = 5  # bump with any schema change: connect() rebuilds an older index from the run files

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
    tags VARCHAR[], run_group VARCHAR, metrics JSON, manifest JSON, manifest_sha VARCHAR, path VARCHAR,
    ingested_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS samples (
    run_id VARCHAR, problem_id VARCHAR, sample_idx INTEGER, prompt VARCHAR, completion VARCHAR,
    pred VARCHAR, gold VARCHAR, correct BOOLEAN, reason VARCHAR, finish_reason VARCHAR, n_tokens INTEGER,
    subject VARCHAR, level VARCHAR, other_correct BOOLEAN, other_pred VARCHAR, method VARCHAR,
    reasoning VARCHAR, reasoning_tokens INTEGER
);
ALTER TABLE samples ADD COLUMN IF NOT EXISTS reasoning VARCHAR;  -- indexes built before thinking traces
ALTER TABLE samples ADD COLUMN IF NOT EXISTS reasoning_tokens INTEGER;
CREATE TABLE IF NOT EXISTS problem_scores (  -- per-problem mean correctness, for fast paired statistics
    run_id VARCHAR, problem_id VARCHAR, pkey UBIGINT, score DOUBLE
);
CREATE TABLE IF NOT EXISTS steps (
    run_id VARCHAR, problem_id VARCHAR, sample_idx INTEGER, step_idx INTEGER, text VARCHAR
);
CREATE TABLE IF NOT EXISTS step_runs (  -- a run's finished step verdicts by one locator: their metrics
    run_id VARCHAR, locator_id VARCHAR, locator VARCHAR, display VARCHAR, spec JSON, metrics JSON
);
CREATE TABLE IF NOT EXISTS step_verdicts (  -- per sample: the verdict of each step and the first wrong one
    run_id VARCHAR, locator_id VARCHAR, locator VARCHAR, problem_id VARCHAR, sample_idx INTEGER, n_steps INTEGER,
    first_wrong INTEGER, outcome VARCHAR, evidence VARCHAR, verdicts VARCHAR[]
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


WRITER_MEMORY = "768MB"  # DuckDB's memory limit for ingest (bench/store.py --long: peak RSS stays under 1.5 GB)


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
        # a writer streams run files into the index: a bounded buffer pool keeps its memory flat however much
        # text it has written (long thinking traces: ~2 GB of text for 50,000 samples), spilling what it must
        con.execute(f"SET memory_limit = '{WRITER_MEMORY}'")
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row and row[0] != str(SCHEMA_VERSION):  # an index from another version: rebuilt from the run files
            for table in ("runs", "samples", "steps", "problem_scores", "step_runs", "step_verdicts", "training_log"):
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
        m.model.group,
        json.dumps(met),
        json.dumps(m.to_dict(), default=str),
        manifest_sha(run),
        str(run.path.resolve()),
    ]


def manifest_sha(run: RunDir) -> str:
    """Change detection by content: any rewrite of run.json (finish, regrade, retag) or of a step-verdict summary
    (``stepdpo-bench steps`` finished, or refreshed by a regrade) re-ingests the run."""
    h = hashlib.sha256((run.path / MANIFEST).read_bytes())
    for summary in sorted((run.path / STEPS_DIR).glob(f"*/{SUMMARY_JSON}")):
        h.update(b"\0" + summary.parent.name.encode() + b"\0" + summary.read_bytes())
    return h.hexdigest()


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
    """Index every finished run under ``results`` (and training logs under it) into ``db``.

    The new index is built beside the old one and swapped in with one rename, so readers (the app, ``leaderboard``)
    never block a writer: they keep the file they opened, and their next query opens the new one.  A malformed run
    directory or log file is skipped with a warning naming it; a failure to write the index (a full disk) leaves
    the old index untouched and raises StoreError naming the path.
    """
    results = Path(results)
    db = Path(db) if db else results / DEFAULT_DB
    report = IngestReport()
    if not results.is_dir():
        raise StoreError(f"{results}: no such results directory")
    warn = log or (lambda msg: None)
    with writer_lock(db):
        known, logs_sig = _index_state(db)
        pending = _scan_runs(results, known, report, warn)
        logs = sorted(results.glob(f"*/{TRAIN_LOG}"))
        if not pending and _logs_signature(logs) == logs_sig and db.exists():
            return report  # nothing new: the index stays as it is, no copy, no swap
        work = db.with_name(f".{db.name}.ingest")
        _remove_index(work)
        try:
            if db.exists():
                shutil.copyfile(db, work)
            con = connect(work)
            try:
                for run, m in pending:
                    _load_run(con, run, m)  # inputs checked: a failure here is a write failure, and fatal
                    (report.replaced if m.run_id in known else report.added).append(m.run_id)
                _load_training_logs(con, logs, warn)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(work, db)
        except Exception as exc:
            _remove_index(work)
            report.added.clear()
            report.replaced.clear()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(
                f"{db}: cannot write the index ({_why(exc)}); the index is unchanged — "
                "free space or fix the folder, then rerun"
            ) from None
    return report


def _index_state(db: Path) -> tuple[dict[str, str], str | None]:
    """(run id -> manifest sha, training-log signature) of the current index; empty when there is none (or it is
    from another schema version, which the write phase rebuilds)."""
    if not db.exists():
        return {}, None
    try:
        con = connect(db, read_only=True)
    except StoreError:
        return {}, None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if not row or row[0] != str(SCHEMA_VERSION):
            return {}, None
        known = dict(con.execute("SELECT run_id, manifest_sha FROM runs").fetchall())
        sig = con.execute("SELECT value FROM meta WHERE key = 'training_logs'").fetchone()
        return known, sig[0] if sig else None
    except Exception:  # a damaged index: rebuilt from the run files
        return {}, None
    finally:
        con.close()


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in text:
        return "No space left on device"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _remove_index(path: Path) -> None:
    for f in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def _scan_runs(results: Path, known: dict[str, str], report: IngestReport, warn: Any) -> list[tuple[RunDir, Any]]:
    """Runs to (re)load: new or changed, finished, readable.  Malformed ones are skipped with a warning."""
    pending = []
    for path in sorted(p.parent for p in results.glob(f"*/{MANIFEST}")):
        run = RunDir(path)
        try:
            m = _check_run(run)
            sha = manifest_sha(run)
        except (RunError, ValueError, OSError) as exc:
            report.skipped.append((str(path), str(exc)))
            warn(f"warning: skipped {exc}" if str(path) in str(exc) else f"warning: skipped {path}: {exc}")
            continue
        if known.get(m.run_id) == sha:
            report.unchanged.append(m.run_id)
            continue
        problem = _unreadable_samples(run)
        if problem:
            report.skipped.append((str(path), problem))
            warn(f"warning: skipped {path}: {problem}")
            continue
        pending.append((run, m))
    return pending


def _unreadable_samples(run: RunDir) -> str | None:
    """Why a run's ``samples.parquet`` cannot be indexed (garbage, truncated, missing columns), or None."""
    import pyarrow.parquet as papq

    try:
        table = papq.read_table(run.path / SAMPLES_PARQUET, columns=["problem_id", "sample_idx", "correct", "steps"])
    except Exception as exc:  # ArrowInvalid, OSError, ...
        return f"{SAMPLES_PARQUET} is unreadable ({_why(exc)}); regrade or rerun the eval to rewrite it"
    del table
    for st in finished_steps(run.path):
        try:
            rows = st.rows()
            bad = next((i for i, r in enumerate(rows, 1) if not _verdict_row_ok(r)), None)
        except RunError as exc:
            return f"{exc} (step verdicts; delete that locator's folder or rerun `stepdpo-bench steps`)"
        if bad is not None:
            return (
                f"{st.path / 'verdicts.jsonl'}: record {bad} is not a step verdict; delete that folder and rerun "
                "`stepdpo-bench steps`"
            )
    return None


def _verdict_row_ok(r: Any) -> bool:
    return (
        isinstance(r, dict)
        and isinstance(r.get("problem_id"), str)
        and isinstance(r.get("sample_idx"), int)
        and isinstance(r.get("n_steps"), int)
        and isinstance(r.get("verdicts"), list)
        and (r.get("first_wrong") is None or isinstance(r.get("first_wrong"), int))
    )


def _load_run(con: Any, run: RunDir, m: Manifest) -> None:
    """Replace one run's rows atomically: readers see the old run or the new one, never half."""
    pq = str((run.path / SAMPLES_PARQUET).resolve())
    rid = m.run_id
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("runs", "samples", "steps", "problem_scores", "step_runs", "step_verdicts"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [rid])
        row = _run_row(run, m)
        con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(row))}, now())", row)
        cols = {c[0] for c in con.execute("SELECT name FROM parquet_schema(?)", [pq]).fetchall()}
        other = "other_correct" if "other_correct" in cols else "NULL::BOOLEAN"
        other_pred = "other_pred" if "other_pred" in cols else "NULL::VARCHAR"
        method = "method" if "method" in cols else "NULL::VARCHAR"  # runs graded before grader 2.0 have none
        trace = "reasoning" if "reasoning" in cols else "NULL::VARCHAR"  # runs written before thinking traces
        trace_tokens = "reasoning_tokens" if "reasoning_tokens" in cols else "NULL::INTEGER"
        con.execute(
            f"""INSERT INTO samples SELECT ?, problem_id, sample_idx, prompt, completion, pred, gold, correct, reason,
                finish_reason, n_tokens, subject, level, {other}, {other_pred}, {method}, {trace}, {trace_tokens}
                FROM read_parquet(?)""",
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
        _load_step_verdicts(con, run, rid)
        con.execute("COMMIT")
    except Exception:
        with contextlib.suppress(Exception):  # a failed ROLLBACK must not hide why the write failed
            con.execute("ROLLBACK")
        raise


def _load_step_verdicts(con: Any, run: RunDir, rid: str) -> None:
    """Each locator's finished verdicts of the run (``stepdpo-bench steps``): its metrics and one row per sample."""
    import pyarrow as pa

    for st in finished_steps(run.path):
        s = st.summary
        lid, name = st.path.name, s.get("locator")
        con.execute(
            "INSERT INTO step_runs VALUES (?, ?, ?, ?, ?, ?)",
            [rid, lid, name, s.get("display") or name, json.dumps(s.get("spec")), json.dumps(s["metrics"])],
        )
        rows = st.rows()
        verdicts = pa.table(
            {
                "problem_id": pa.array([r["problem_id"] for r in rows], pa.string()),
                "sample_idx": pa.array([int(r["sample_idx"]) for r in rows], pa.int32()),
                "n_steps": pa.array([int(r["n_steps"]) for r in rows], pa.int32()),
                "first_wrong": pa.array([r.get("first_wrong") for r in rows], pa.int32()),
                "outcome": pa.array([r.get("outcome") for r in rows], pa.string()),
                "evidence": pa.array([r.get("evidence") or "" for r in rows], pa.string()),
                "verdicts": pa.array([list(r.get("verdicts") or []) for r in rows], pa.list_(pa.string())),
            }
        )
        con.register("_step_verdicts", verdicts)
        try:
            con.execute(
                """INSERT INTO step_verdicts SELECT ?, ?, ?, problem_id, sample_idx, n_steps, first_wrong, outcome,
                   evidence, verdicts FROM _step_verdicts""",
                [rid, lid, name],
            )
        finally:
            con.unregister("_step_verdicts")


def _logs_signature(logs: list[Path]) -> str | None:
    """Size and mtime of every training log: the reload is skipped when none changed since the last ingest."""
    if not logs:
        return None
    parts = []
    for p in logs:
        with contextlib.suppress(OSError):
            st = p.stat()
            parts.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _load_training_logs(con: Any, logs: list[Path], warn: Any = None) -> None:
    """Trainer logs (``*/train_log.jsonl`` with a sibling ``train_config.json``) when present."""
    if not logs:
        return
    sig = _logs_signature(logs)
    row = con.execute("SELECT value FROM meta WHERE key = 'training_logs'").fetchone()
    if row and row[0] == sig:
        return
    rows = []
    for log in logs:
        rows += _training_rows(log, warn or (lambda msg: None))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('training_logs', ?)", [sig])
        con.execute("DELETE FROM training_log")
        if rows:
            con.executemany(f"INSERT INTO training_log VALUES ({', '.join('?' * 10)})", rows)
        con.execute("COMMIT")
    except Exception:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise


_NUMERIC = ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "lr")


def _training_rows(log: Path, warn: Any) -> list[list[Any]]:
    """One training log's rows; a bad config, a bad line or an unreadable file is skipped with a warning naming it
    (a torn last line of a live job silently)."""
    method = None
    cfg_path = log.with_name(TRAIN_CONFIG)
    if cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            method = cfg.get("method") if isinstance(cfg, dict) else None
            if not isinstance(cfg, dict):
                warn(f"warning: {cfg_path}: not a JSON object; its run's method is unknown")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            warn(f"warning: {cfg_path}: unreadable ({_why(exc)}); its run's method is unknown")
    try:
        text = log.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        warn(f"warning: skipped {log}: unreadable ({_why(exc)})")
        return []
    lines = text.split("\n")
    rows, bad = [], []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            if lineno < len(lines) - 1 or text.endswith("\n"):
                bad.append(lineno)  # torn last line of a live job: silent; elsewhere: a bad line
            continue
        numbers_ok = isinstance(r, dict) and all(r.get(k) is None or _is_number(r[k]) for k in _NUMERIC)
        if not numbers_ok or not isinstance(r.get("step"), int) or isinstance(r.get("step"), bool):
            bad.append(lineno)
            continue
        rows.append([log.parent.name, method, r["step"], *(r.get(k) for k in _NUMERIC), str(log)])
    if bad:
        warn(f"warning: {log}: skipped {len(bad)} malformed line(s) (line {', '.join(map(str, bad[:5]))})")
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def default_db(results: Path | None, db: Path | None) -> Path:
    if db:
        return Path(db)
    return Path(results or os.environ.get("STEPDPO_RESULTS", "results")) / DEFAULT_DB
