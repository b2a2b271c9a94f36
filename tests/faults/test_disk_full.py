"""A real full disk: a small tmpfs mounted in a private mount namespace (``unshare -rm``, no privileges needed),
eval and ingest writing into it until the kernel says ENOSPC.  Each must exit 2 with one line naming the path,
keep everything already written, and finish on a rerun once there is room."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _namespaces():
    if shutil.which("unshare") is None:
        pytest.skip("util-linux unshare missing")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt || exit 9"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()[:200]}")


def _in_full_disk(script: str, size_kb: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) with ``$FULL`` a fresh tmpfs of ``size_kb`` KiB, private to this process."""
    full = tmp_path / "full"
    full.mkdir(exist_ok=True)
    sh = f"mount -t tmpfs -o size={size_kb}k tmpfs {full} && FULL={full} && {script}"
    return subprocess.run(["unshare", "-rm", "sh", "-c", sh], capture_output=True, text=True, timeout=900)


def test_eval_on_a_full_disk_keeps_its_samples_and_resumes(tiny_ckpt, tmp_path):
    args = [
        "eval",
        "--model",
        str(tiny_ckpt),
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        "40",
        "--max-tokens",
        "24",
        "--chunk-size",
        "4",
    ]
    ref = runner.invoke(app, [*args, "--results", str(tmp_path / "ref")])
    assert ref.exit_code == 0, ref.output
    saved = tmp_path / "saved"
    cmd = " ".join([sys.executable, "-m", "stepdpo_bench.cli", *args, "--results", "$FULL/r"])
    res = _in_full_disk(f'{cmd}; echo "exit=$?"; cp -r $FULL/r {saved}', 24, tmp_path)
    assert "exit=2" in res.stdout, res.stdout + res.stderr[-2000:]
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "/r/" in errors[0], res.stderr[-1500:]
    assert "Traceback" not in res.stderr
    (run,) = [RunDir(d) for d in saved.iterdir() if (d / "run.json").is_file()]
    kept = run.read_samples()
    assert 0 < len(kept) < 40  # it got part of the way before the disk filled
    results = tmp_path / "roomy"
    shutil.copytree(saved, results)
    done = runner.invoke(app, [*args, "--results", str(results)])
    assert done.exit_code == 0, done.output
    (run,) = [RunDir(d) for d in results.iterdir() if (d / "run.json").is_file()]
    (ref_run,) = [RunDir(d) for d in (tmp_path / "ref").iterdir() if (d / "run.json").is_file()]
    got = {s["problem_id"]: s["completion"] for s in run.read_samples()}
    assert got == {s["problem_id"]: s["completion"] for s in ref_run.read_samples()}
    assert all(got[s["problem_id"]] == s["completion"] for s in kept)


def test_ingest_on_a_full_disk_exits_2_and_keeps_the_old_index(app_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    first = sorted(d for d in results.iterdir() if (d / "samples.parquet").is_file())
    hidden = tmp_path / "later"
    hidden.mkdir()
    for d in first[1:]:
        d.rename(hidden / d.name)  # the first ingest sees one run; the rest arrive later
    res = runner.invoke(app, ["ingest", str(results), "--db", str(tmp_path / "index.duckdb")])
    assert res.exit_code == 0, res.output
    for d in hidden.iterdir():
        d.rename(results / d.name)
    size_kb = (tmp_path / "index.duckdb").stat().st_size // 1024 + 64  # room for the index, not for a second copy
    out = tmp_path / "after"
    cmd = " ".join([sys.executable, "-m", "stepdpo_bench.cli", "ingest", str(results), "--db", "$FULL/index.duckdb"])
    script = f'cp {tmp_path / "index.duckdb"} $FULL/ && {cmd}; echo "exit=$?"; mkdir {out} && cp -a $FULL/. {out}/'
    res = _in_full_disk(script, size_kb, tmp_path)
    assert "exit=2" in res.stdout, res.stdout + res.stderr[-2000:]
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "index.duckdb" in errors[0], res.stderr
    left = {p.name for p in out.iterdir()}
    assert left <= {"index.duckdb", "index.duckdb.lock"}, left  # no half-written work file left behind
    assert (out / "index.duckdb").read_bytes() == (tmp_path / "index.duckdb").read_bytes()  # the old index, intact
    again = runner.invoke(app, ["ingest", str(results), "--db", str(tmp_path / "index.duckdb")])
    assert again.exit_code == 0 and f"{len(first) - 1} added" in again.output
