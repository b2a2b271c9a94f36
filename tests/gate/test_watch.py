"""Continuous evaluation: checkpoints are picked up once complete, evaluated, ingested and gated, once each."""

from __future__ import annotations

import os
import shutil
import time

from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.store import connect
from stepdpo_bench.watch import complete_checkpoints

runner = CliRunner()


def test_watch_evaluates_each_complete_checkpoint_once(tiny_ckpt, tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    shutil.copytree(tiny_ckpt, train / "checkpoint-100")
    shutil.copytree(tiny_ckpt, train / "checkpoint-200")
    (train / "checkpoint-300").mkdir()  # still being written: no weights yet
    (train / "checkpoint-300" / "config.json").write_text("{}")
    results = tmp_path / "results"
    args = [
        "watch",
        str(train),
        "--tasks",
        "arith",
        "--limit",
        "12",
        "--max-tokens",
        "4",
        "--backend",
        "hf",
        "--results",
        str(results),
        "--once",
        "--settle",
        "0",
        "--min-problems",
        "10",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = [x for x in res.stdout.splitlines() if x.startswith("checkpoint-")]
    assert [x.split(":")[0] for x in lines] == ["checkpoint-100", "checkpoint-200"]
    con = connect(results / "leaderboard.duckdb", read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2  # one run per checkpoint, indexed
    con.close()
    # a restart re-evaluates nothing; a new complete checkpoint is gated against the first one's run
    shutil.copytree(tiny_ckpt, train / "checkpoint-400")
    base = next(d.name for d in results.iterdir() if d.name.startswith("checkpoint-100__"))
    res = runner.invoke(app, [*args, "--baseline", base, "--max-drop", "30"])  # 12 problems: +-24 points at 95%
    lines = [x for x in res.stdout.splitlines() if x.startswith("checkpoint-")]
    assert lines == ["checkpoint-400: arith 0.0% [pass]"], res.output


def test_a_checkpoint_still_changing_is_not_complete(tiny_ckpt, tmp_path):
    shutil.copytree(tiny_ckpt, tmp_path / "checkpoint-1")
    now = time.time()
    for f in (tmp_path / "checkpoint-1").iterdir():
        os.utime(f, (now, now))
    assert complete_checkpoints(tmp_path, settle=60) == []
    old = now - 120
    for f in (tmp_path / "checkpoint-1").iterdir():
        os.utime(f, (old, old))
    assert [p.name for p in complete_checkpoints(tmp_path, settle=60)] == ["checkpoint-1"]
