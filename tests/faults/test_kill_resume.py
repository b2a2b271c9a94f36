"""Fault injection: eval, ingest, pairs and train are killed with SIGKILL at seeded random points of their work,
again and again, then resumed.  After every kill the files must hold no duplicate and lose nothing already
written; at the end the result must equal an uninterrupted run's (samples, metrics, pairs, loss curve, index)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir, read_log

from ..helpers import write_last_step_pairs

runner = CliRunner()
ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
KILLS = 4


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "stepdpo_bench.cli", *map(str, args)]


def kill_when(cmd: list[str], ready: Callable[[], bool], rng: random.Random, extra: float = 0.4) -> bool:
    """Run ``cmd``; once ``ready()`` holds, wait a seeded random moment more and SIGKILL its process group.
    True if it was killed, False if it finished first (it must then have succeeded)."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        time.sleep(rng.uniform(0, extra))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True
    assert proc.returncode == 0, proc.stderr.read()[-3000:]
    return False


def _lines(path: Path) -> list[str]:
    """The complete lines of a log (a torn tail is not a line)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    return text.split("\n")[:-1]


def _only_run(out: Path) -> RunDir:
    (run,) = [RunDir(d) for d in out.iterdir() if (d / "run.json").is_file()]
    return run


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "sampled"])
def test_eval_survives_kills(tiny_ckpt, tmp_path, sampled):
    args = [
        "eval",
        "--model",
        tiny_ckpt,
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        24,
        "--max-tokens",
        24,
        "--chunk-size",
        3,
        "--batch-size",
        3,
    ]
    if sampled:
        args += ["--n", 2, "--temperature", 0.8, "--seed", 5]
    ref = runner.invoke(app, [str(a) for a in args] + ["--results", str(tmp_path / "ref")])
    assert ref.exit_code == 0, ref.output
    want = {(s["problem_id"], s["sample_idx"]): s["completion"] for s in _only_run(tmp_path / "ref").read_samples()}
    out = tmp_path / "killed"
    rng = random.Random(1234 + sampled)
    snapshots: list[list[str]] = []
    for _ in range(KILLS):
        threshold = rng.randint(1, len(want) - 2)

        def ready() -> bool:
            return sum(len(_lines(p)) for p in out.glob("*/samples.jsonl")) >= threshold  # noqa: B023

        if not kill_when(_cli(*args, "--results", out), ready, rng):
            break
        (log,) = out.glob("*/samples.jsonl")
        lines = _lines(log)
        keys = [(json.loads(x)["problem_id"], json.loads(x)["sample_idx"]) for x in lines]
        assert len(keys) == len(set(keys)), "a killed eval left a duplicate sample"
        if snapshots:
            assert lines[: len(snapshots[-1])] == snapshots[-1], "a resumed eval lost or rewrote finished samples"
        snapshots.append(lines)
    assert len(snapshots) >= 2, "the eval finished before it could be killed twice; make it longer"
    done = subprocess.run(_cli(*args, "--results", out), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = _only_run(out)
    got = {(s["problem_id"], s["sample_idx"]): s["completion"] for s in run.read_samples()}
    assert got == want  # the same samples as a run never killed: nothing lost, nothing duplicated, same draws
    assert run.manifest().metrics == _only_run(tmp_path / "ref").manifest().metrics
    assert all(_lines(run.path / "samples.jsonl")[: len(s)] == s for s in snapshots)


def test_ingest_survives_kills(app_results, tmp_path):
    """Kills during ingests of many runs: after each, the index is the old one or the new one, never half of one,
    and it agrees with the files; the next ingest completes."""
    import duckdb

    from stepdpo_bench.manifest import Manifest  # noqa: F401  (the runs below are real run files)

    results = tmp_path / "results"
    results.mkdir()
    seeds = [RunDir(d) for d in app_results.iterdir() if (d / "samples.parquet").is_file()]
    for i in range(60):
        src = seeds[i % len(seeds)]
        m = src.manifest()
        rid = f"copy{i:02d}__arith__{i:012x}"
        shutil.copytree(src.path, results / rid)
        m.run_id, m.model.label = rid, f"copy-{i}"
        RunDir(results / rid).write_manifest(m)
    db = results / "leaderboard.duckdb"
    work = results / ".leaderboard.duckdb.ingest"
    rng = random.Random(99)

    def consistent() -> int:
        if not db.exists():
            return 0
        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.execute(
                "SELECT r.run_id, r.n_samples, count(s.run_id) FROM runs r LEFT JOIN samples s USING (run_id) "
                "GROUP BY ALL"
            ).fetchall()
        finally:
            con.close()
        for rid, n, have in rows:
            assert n == have == len(RunDir(results / rid).read_samples()), rid
        return len(rows)

    indexed, kills = [], 0
    for k in range(KILLS):
        if k == 2:  # more runs appear between kills, as they do while a training job evaluates
            for i in range(60, 70):
                shutil.copytree(results / f"copy{i - 60:02d}__arith__{i - 60:012x}", results / f"copy{i}")
                m = RunDir(results / f"copy{i}").manifest()
                m.run_id, m.model.label = f"copy{i}", f"copy-{i}"
                RunDir(results / f"copy{i}").write_manifest(m)
        kills += kill_when(_cli("ingest", results), work.exists, rng, extra=0.8)
        indexed.append(consistent())
    assert kills >= 2, "ingest finished before it could be killed twice; give it more runs"
    done = subprocess.run(_cli("ingest", results), env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert consistent() == 70 and not work.exists()
    assert indexed == sorted(indexed)  # the index only ever grew: a kill never lost what an earlier ingest wrote


def test_pairs_survive_kills(arith_policy, tmp_path):
    import yaml

    def config(out: Path) -> Path:
        cfg = {
            "model": str(arith_policy),
            "out": str(out),
            "limit": 12,
            "k": 4,
            "max_tokens": 48,
            "locators": ["symbolic", "rollout"],
            "rollout_m": 2,
            "rectify_n": 4,
            "chunk_size": 3,
            "verify_chosen": False,
            "batch_size": 8,
        }
        f = out.with_suffix(".yaml")
        f.write_text(yaml.safe_dump(cfg))
        return f

    ref = runner.invoke(app, ["pairs", "run", "--config", str(config(tmp_path / "ref"))])
    assert ref.exit_code == 0, ref.output
    pipe = tmp_path / "killed"
    f = config(pipe)
    rng = random.Random(7)

    def progress() -> int:
        n = sum(len(_lines(p)) for p in pipe.glob("collect/*/samples.jsonl"))
        return n + len(_lines(pipe / "located.jsonl")) + len(_lines(pipe / "rectified.jsonl"))

    total = sum(len(_lines(p)) for p in (tmp_path / "ref").glob("collect/*/samples.jsonl"))
    total += len(_lines(tmp_path / "ref" / "located.jsonl")) + len(_lines(tmp_path / "ref" / "rectified.jsonl"))
    kills = 0
    for _ in range(KILLS):
        threshold = rng.randint(1, total - 1)
        if not kill_when(_cli("pairs", "run", "--config", f), lambda t=threshold: progress() >= t, rng):
            break
        kills += 1
        for name in ("located.jsonl", "rectified.jsonl"):
            keys = [(r["key"], r.get("locator")) for r in read_log(pipe / name)]
            assert len(keys) == len(set(keys)), f"a killed pipeline left a duplicate in {name}"
    assert kills >= 2, "the pipeline finished before it could be killed twice"
    done = subprocess.run(_cli("pairs", "run", "--config", f), env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("step_dpo_pairs.jsonl", "dpo_pairs.jsonl"):
        assert (pipe / name).read_text() == (tmp_path / "ref" / name).read_text(), name
    assert json.loads((pipe / "funnel.json").read_text()) == json.loads((tmp_path / "ref" / "funnel.json").read_text())


def test_train_survives_kills(tiny_ckpt, tmp_path):
    pairs = write_last_step_pairs(tmp_path / "pairs.jsonl", 40)
    args = [
        "train",
        "--method",
        "step-dpo",
        "--model",
        tiny_ckpt,
        "--data",
        pairs,
        "--max-steps",
        16,
        "--batch-size",
        4,
        "--lr",
        "1e-3",
        "--beta",
        "0.5",
        "--prompt",
        "arith-step",
        "--save-steps",
        1,
        "--seed",
        3,
    ]
    ref = runner.invoke(app, [str(a) for a in args] + ["--out", str(tmp_path / "ref")])
    assert ref.exit_code == 0, ref.output
    out = tmp_path / "killed"
    rng = random.Random(5)
    kills = 0
    for _ in range(KILLS):
        threshold = rng.randint(1, 14)
        if not kill_when(_cli(*args, "--out", out), lambda t=threshold: len(_lines(out / "train_log.jsonl")) >= t, rng):
            break
        kills += 1
        steps = [json.loads(x)["step"] for x in _lines(out / "train_log.jsonl")]
        assert steps == sorted(set(steps)), "a killed run left a duplicated or out-of-order step in its log"
    assert kills >= 2, "training finished before it could be killed twice"
    done = subprocess.run(_cli(*args, "--out", out), env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    want = [json.loads(x) for x in _lines(tmp_path / "ref" / "train_log.jsonl")]
    got = [json.loads(x) for x in _lines(out / "train_log.jsonl")]
    assert [x["step"] for x in got] == list(range(1, 17))
    for a, b in zip(want, got, strict=True):  # the same curve as a run that was never killed
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-4)
        assert b["rewards/margins"] == pytest.approx(a["rewards/margins"], abs=2e-4)
