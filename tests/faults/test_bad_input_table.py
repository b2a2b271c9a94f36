"""Bad input, table-driven, one row per (command, mistake): exit 2, exactly one ``error:`` line that names what is
wrong, no traceback, nothing written or changed in the results folder, and the same command with the input fixed
succeeds.  Ingest's rows are the other kind: a bad run or log is skipped with a warning naming it, the rest land."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

runner = CliRunner()


@dataclass
class Env:
    """What a row can point at: a scratch folder, a tiny checkpoint, copied fixture runs, the shared data."""

    tmp: Path
    ckpt: Path
    results: Path
    data: Path
    saved: dict[Path, Path] = field(default_factory=dict)  # broken file -> its original, for the repair
    found: dict[str, RunDir] = field(default_factory=dict)

    def runs(self) -> list[RunDir]:
        return sorted((RunDir(d) for d in self.results.iterdir() if (d / "run.json").is_file()), key=lambda r: r.path)

    def run_of(self, method: str) -> RunDir:
        """The newest (regraded) run of the fixture model with this method (found once, before a row breaks it)."""
        if method not in self.found:
            self.found[method] = next(
                r for r in self.runs() if r.manifest().model.method == method and r.manifest().regraded
            )
        return self.found[method]


@dataclass
class Row:
    name: str
    argv: Callable[[Env], list[str]]  # the bad command
    says: str  # a fragment of the one error line
    setup: Callable[[Env], None] = lambda e: None
    fix: Callable[[Env], list[str]] | None = None  # the command after fixing the input (None: same argv)
    repair: Callable[[Env], None] = lambda e: None  # fix the input on disk
    ok_codes: tuple[int, ...] = (0,)
    tags: list[str] = field(default_factory=list)


def _eval(e: Env, *extra: str, task: str = "arith") -> list[str]:
    base = ["eval", "--model", str(e.ckpt), "--backend", "hf", "--tasks", task, "--max-tokens", "4"]
    return [*base, "--results", str(e.results / "new"), *extra]


def _ok_eval(e: Env) -> list[str]:
    return _eval(e, "--limit", "2")


def _jsonl(rec: dict | list | None) -> Callable[[Env], None]:
    def setup(e: Env) -> None:
        good = {"question": "What is 1+1?", "answer": "2"}
        (e.tmp / "mine.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(rec) + "\n")

    return setup


def _good_jsonl(e: Env) -> None:
    (e.tmp / "mine.jsonl").write_text(json.dumps({"question": "What is 1+1?", "answer": "2"}) + "\n")


def _mine(e: Env) -> list[str]:
    return _eval(e, task=f"jsonl:{e.tmp / 'mine.jsonl'}")


def _check(e: Env, *extra: str) -> list[str]:
    a, b = e.run_of("dpo"), e.run_of("step-dpo")
    base = ["check", "--baseline", str(a.path), "--candidate", str(b.path), "--min-problems", "10"]
    return [*base, "--results", str(e.results), *extra]


def _break_file(name: str, content: bytes | None) -> Callable[[Env], None]:
    """Replace the baseline run's ``name`` with ``content`` (None: a directory); ``_restore`` puts it back."""

    def setup(e: Env) -> None:
        p = e.run_of("dpo").path / name
        e.saved[p] = e.tmp / f"saved-{name}"
        shutil.copy2(p, e.saved[p])
        p.unlink()
        if content is None:
            p.mkdir()
        else:
            p.write_bytes(content)

    return setup


def _restore(e: Env) -> None:
    for p, saved in e.saved.items():
        if p.is_dir():
            p.rmdir()
        shutil.copy2(saved, p)


def _drop_task(e: Env) -> None:
    p = e.run_of("dpo").path / "run.json"
    e.saved[p] = e.tmp / "saved-run.json"
    shutil.copy2(p, e.saved[p])
    m = json.loads(p.read_text())
    del m["task"]
    p.write_text(json.dumps(m))


def _train(e: Env, *extra: str) -> list[str]:
    return ["train", "--method", "step-dpo", "--model", str(e.ckpt), "--out", str(e.tmp / "ckpt-out"), *extra]


def _pairs(e: Env, rec: dict | str | None = None) -> None:
    good = {"prompt": "What is 1+1?", "initial_reason_steps": "Step 1: ", "chosen": "2", "rejected": "3"}
    lines = [json.dumps(good)] * 4
    if rec is not None:
        lines[2] = rec if isinstance(rec, str) else json.dumps(rec)
    (e.tmp / "pairs.jsonl").write_text("\n".join(lines) + "\n")


def _train_ok(e: Env) -> list[str]:
    return _train(e, "--data", str(e.tmp / "pairs.jsonl"), "--max-steps", "1", "--batch-size", "2")


ROWS: list[Row] = [
    # ---- eval: every range and name checked at the door, before a model loads ----
    Row("eval --limit -5", lambda e: _eval(e, "--limit", "-5"), "--limit must be at least 1", fix=_ok_eval),
    Row("eval --limit 0", lambda e: _eval(e, "--limit", "0"), "--limit must be at least 1", fix=_ok_eval),
    Row("eval --temperature -1", lambda e: _eval(e, "--temperature", "-1"), "--temperature", fix=_ok_eval),
    Row("eval --top-p 5", lambda e: _eval(e, "--top-p", "5"), "--top-p must be in (0, 1]", fix=_ok_eval),
    Row("eval --top-p 0", lambda e: _eval(e, "--top-p", "0"), "--top-p must be in (0, 1]", fix=_ok_eval),
    Row("eval --n 0", lambda e: _eval(e, "--n", "0"), "--n must be at least 1", fix=_ok_eval),
    Row(
        "eval --batch-size 0", lambda e: _eval(e, "--batch-size", "0"), "--batch-size must be at least 1", fix=_ok_eval
    ),
    Row(
        "eval --max-tokens 0", lambda e: _eval(e, "--max-tokens", "0"), "--max-tokens must be at least 1", fix=_ok_eval
    ),
    Row(
        "eval --chunk-size 0", lambda e: _eval(e, "--chunk-size", "0"), "--chunk-size must be at least 1", fix=_ok_eval
    ),
    Row("eval --tasks foo", lambda e: _eval(e, task="foo"), "unknown task 'foo'", fix=_ok_eval),
    Row("eval --tasks ,", lambda e: _eval(e, task=","), "--tasks is empty", fix=_ok_eval),
    Row("eval --prompt nope", lambda e: _eval(e, "--prompt", "nope"), "unknown prompt 'nope'", fix=_ok_eval),
    Row("eval --method foo", lambda e: _eval(e, "--method", "foo"), "--method 'foo'", fix=_ok_eval),
    Row("eval --convention foo", lambda e: _eval(e, "--convention", "foo"), "--convention 'foo'", fix=_ok_eval),
    Row(
        "eval --tp 4 --backend hf", lambda e: _eval(e, "--tp", "4"), "--tp is an option of --backend vllm", fix=_ok_eval
    ),
    Row(
        "eval --base-url notaurl",
        lambda e: ["eval", "--model", "m", "--backend", "openai", "--base-url", "notaurl", "--tasks", "arith"],
        "notaurl",
        fix=None,
        ok_codes=(),
    ),
    Row(
        "eval --prompt with --prompt-file",
        lambda e: _eval(e, "--prompt", "chat", "--prompt-file", str(e.tmp / "p.txt")),
        "not both",
        setup=lambda e: (e.tmp / "p.txt").write_text("Q: {question}\nA:"),
        fix=lambda e: _eval(e, "--prompt-file", str(e.tmp / "p.txt"), "--limit", "2"),
    ),
    Row(
        "eval --subjects Nope",
        lambda e: _eval(e, "--subjects", "Nope", "--data-dir", str(e.data), task="math500"),
        "(subjects: Algebra, Counting & Probability,",
        fix=lambda e: _eval(e, "--subjects", "Algebra", "--limit", "1", "--data-dir", str(e.data), task="math500"),
    ),
    Row(
        "eval missing checkpoint",
        lambda e: [*_eval(e), "--model", str(e.tmp / "nope")],
        "no such checkpoint",
        fix=_ok_eval,
    ),
    Row(
        "jsonl question is a list",
        _mine,
        "mine.jsonl:2: field 'question' should be str, not list",
        setup=_jsonl({"question": ["a"], "answer": "2"}),
        repair=_good_jsonl,
    ),
    Row(
        "jsonl answer is a dict",
        _mine,
        "mine.jsonl:2: field 'answer' should be str or int or float, not dict",
        setup=_jsonl({"question": "q", "answer": {"x": 1}}),
        repair=_good_jsonl,
    ),
    Row(
        "jsonl answer is null",
        _mine,
        "mine.jsonl:2: field 'answer' is null",
        setup=_jsonl({"question": "q", "answer": None}),
        repair=_good_jsonl,
    ),
    Row(
        "jsonl answer missing",
        _mine,
        "mine.jsonl:2: missing field 'answer' (fields present: question)",
        setup=_jsonl({"question": "q"}),
        repair=_good_jsonl,
    ),
    Row(
        "jsonl row is a list",
        _mine,
        "mine.jsonl:2: expected a JSON object, got array",
        setup=_jsonl([1, 2]),
        repair=_good_jsonl,
    ),
    Row(
        "jsonl question empty",
        _mine,
        "mine.jsonl:2: field 'question' is empty",
        setup=_jsonl({"question": " ", "answer": "1"}),
        repair=_good_jsonl,
    ),
    # ---- check: unusable input is 2, never 1 ("regressed") ----
    Row(
        "check truncated run.json",
        _check,
        "run.json",
        setup=_break_file("run.json", b'{"run_id": "x", "ta'),
        repair=_restore,
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check run.json is [1,2,3]",
        _check,
        "run.json",
        setup=_break_file("run.json", b"[1, 2, 3]"),
        repair=_restore,
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check run.json unreadable",
        _check,
        "run.json",
        setup=_break_file("run.json", None),
        repair=_restore,
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check garbage samples.parquet",
        _check,
        "samples.parquet",
        setup=_break_file("samples.parquet", b"PAR1 this is not a parquet file"),
        repair=_restore,
        ok_codes=(0, 1, 3),
    ),
    Row("check manifest without task", _check, "task", setup=_drop_task, repair=_restore, ok_codes=(0, 1, 3)),
    Row(
        "check --alpha 2",
        lambda e: _check(e, "--alpha", "2"),
        "--alpha must be in (0, 1)",
        fix=lambda e: _check(e),
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check --max-drop -5",
        lambda e: _check(e, "--max-drop", "-5"),
        "--max-drop",
        fix=lambda e: _check(e),
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check --min-problems 0",
        lambda e: _check(e, "--min-problems", "0"),
        "--min-problems must be at least 1",
        fix=lambda e: _check(e),
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check unknown baseline",
        lambda e: ["check", "--baseline", "nope", "--candidate", "nope2", "--results", str(e.results)],
        "nope",
        fix=lambda e: _check(e),
        ok_codes=(0, 1, 3),
    ),
    Row(
        "check report into a file path that is a folder",
        lambda e: _check(e, "--markdown", str(e.results)),
        "is a folder; give a file path",
        fix=lambda e: _check(e, "--markdown", str(e.tmp / "new" / "deep" / "r.md")),
        ok_codes=(0, 1, 3),
    ),
    # ---- grade ----
    Row(
        "grade --timeout -1",
        lambda e: ["grade", "1", "1", "--timeout", "-1"],
        "--timeout must be positive",
        fix=lambda e: ["grade", "1", "1"],
    ),
    Row(
        "grade --convention foo",
        lambda e: ["grade", "1", "1", "--convention", "foo"],
        "unknown answer convention",
        fix=lambda e: ["grade", "1", "1"],
    ),
    Row(
        "grade --format yaml",
        lambda e: ["grade", "1", "1", "--format", "yaml"],
        "--format 'yaml'",
        fix=lambda e: ["grade", "1", "1", "--format", "json"],
    ),
    # ---- regrade, compare ----
    Row(
        "regrade unknown run",
        lambda e: ["regrade", "nope", "--results", str(e.results)],
        "nope",
        fix=lambda e: ["regrade", str(e.results), "--results", str(e.tmp / "rg")],
    ),
    Row(
        "regrade truncated run.json",
        lambda e: ["regrade", str(e.run_of("dpo").path), "--results", str(e.tmp / "rg")],
        "run.json",
        setup=_break_file("run.json", b"{"),
        repair=_restore,
    ),
    Row(
        "compare unknown run",
        lambda e: ["compare", "nope", "nope", "--results", str(e.results)],
        "nope",
        fix=lambda e: ["compare", str(e.run_of("dpo").path), str(e.run_of("step-dpo").path)],
    ),
    # ---- leaderboard, ingest ----
    Row(
        "leaderboard --format foo",
        lambda e: ["leaderboard", "--results", str(e.results), "--format", "foo"],
        "unknown --format 'foo'",
        fix=lambda e: ["leaderboard", "--results", str(e.results), "--format", "csv"],
    ),
    Row(
        "leaderboard without an index",
        lambda e: ["leaderboard", "--results", str(e.tmp / "empty")],
        "ingest",
        fix=lambda e: ["leaderboard", "--results", str(e.results)],
    ),
    Row(
        "leaderboard on a garbage index",
        lambda e: ["leaderboard", "--results", str(e.results), "--db", str(e.tmp / "junk.duckdb")],
        "junk.duckdb",
        setup=lambda e: (e.tmp / "junk.duckdb").write_bytes(b"this is not a database" * 100),
        fix=lambda e: ["leaderboard", "--results", str(e.results)],
    ),
    Row(
        "ingest a missing folder",
        lambda e: ["ingest", str(e.tmp / "nope")],
        "nope",
        fix=lambda e: ["ingest", str(e.results)],
    ),
    Row(
        "ingest into a garbage index",
        lambda e: ["ingest", str(e.results), "--db", str(e.tmp / "junk.duckdb")],
        "junk.duckdb",
        setup=lambda e: (e.tmp / "junk.duckdb").write_bytes(b"this is not a database" * 100),
        fix=lambda e: ["ingest", str(e.results), "--db", str(e.tmp / "fresh.duckdb")],
    ),
    # ---- train: refused before a model loads ----
    Row(
        "train --method foo",
        lambda e: _train(e, "--method", "foo", "--data", str(e.tmp / "pairs.jsonl")),
        "foo",
        setup=_pairs,
        fix=_train_ok,
    ),
    Row("train --beta -1", lambda e: [*_train_ok(e), "--beta", "-1"], "beta", setup=_pairs, fix=_train_ok),
    Row("train --batch-size 0", lambda e: [*_train_ok(e), "--batch-size", "0"], "batch", setup=_pairs, fix=_train_ok),
    Row(
        "train --epochs 0",
        lambda e: _train(e, "--data", str(e.tmp / "pairs.jsonl"), "--epochs", "0"),
        "epochs",
        setup=_pairs,
        fix=_train_ok,
    ),
    Row(
        "train missing data",
        lambda e: _train(e, "--data", str(e.tmp / "none.jsonl")),
        "none.jsonl",
        fix=_train_ok,
        setup=_pairs,
    ),
    Row("train malformed pairs line", _train_ok, "pairs.jsonl:3", setup=lambda e: _pairs(e, "{oops"), repair=_pairs),
    Row(
        "train pair without rejected",
        _train_ok,
        "pairs.jsonl:3",
        repair=_pairs,
        setup=lambda e: _pairs(e, {"prompt": "q", "initial_reason_steps": "", "chosen": "2"}),
    ),
    Row(
        "train --config with an unknown key",
        lambda e: [*_train_ok(e), "--config", str(e.tmp / "t.yaml")],
        "bogus",
        setup=lambda e: (_pairs(e), (e.tmp / "t.yaml").write_text("bogus: 1\n")),
        repair=lambda e: (e.tmp / "t.yaml").write_text("beta: 0.2\n"),
        fix=lambda e: [*_train_ok(e), "--config", str(e.tmp / "t.yaml")],
    ),
    # ---- pairs, watch, import ----
    Row(
        "pairs run --config missing",
        lambda e: ["pairs", "run", "--config", str(e.tmp / "none.yaml")],
        "none.yaml",
        fix=None,
        ok_codes=(),
    ),
    Row(
        "pairs run --set unknown",
        lambda e: ["pairs", "run", "--set", "bogus=1", "--out", str(e.tmp / "p")],
        "bogus",
        fix=None,
        ok_codes=(),
    ),
    Row(
        "watch a missing folder",
        lambda e: ["watch", str(e.tmp / "nope"), "--once", "--results", str(e.results)],
        "nope",
        fix=lambda e: ["watch", str(e.tmp), "--once", "--results", str(e.tmp / "w")],
    ),
    Row(
        "watch --interval 0",
        lambda e: ["watch", str(e.tmp), "--interval", "0", "--results", str(e.results)],
        "--interval",
        fix=lambda e: ["watch", str(e.tmp), "--once", "--results", str(e.tmp / "w")],
    ),
    Row(
        "import step-dpo missing file",
        lambda e: ["import", "step-dpo", str(e.tmp / "none.json"), "--model", "m", "--results", str(e.results)],
        "none.json",
        fix=None,
        ok_codes=(),
    ),
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".lock" not in p.name
    }


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_bad_input(row: Row, app_results, tiny_ckpt, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    results = tmp_path / "results"
    shutil.copytree(app_results, results)
    e = Env(tmp_path, tiny_ckpt, results, shared_data)
    e.run_of("dpo"), e.run_of("step-dpo")
    row.setup(e)
    before = _tree(tmp_path)
    res = runner.invoke(app, row.argv(e))
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert row.says in errors[0], errors[0]
    assert "Traceback" not in res.output
    assert _tree(tmp_path) == before, "a refused command changed files"
    if not row.ok_codes:
        return
    row.repair(e)
    again = runner.invoke(app, (row.fix or row.argv)(e))
    assert again.exit_code in row.ok_codes, (again.exit_code, again.output)


def _poison(results: Path) -> dict[str, str]:
    """Plant bad runs and logs beside the good ones; returns path -> the fragment its warning must carry."""
    bad: dict[str, str] = {}
    for name, content in (
        ("list-manifest", b"[1, 2, 3]"),
        ("null-manifest", b"null"),
        ("latin1-manifest", '{"run_id": "caf\xe9"}'.encode("latin-1")),
        ("torn-manifest", b'{"run_id": "torn", "sta'),
    ):
        (results / name).mkdir()
        (results / name / "run.json").write_bytes(content)
        bad[name] = str(results / name)
    good = next(d for d in sorted(results.iterdir()) if (d / "samples.parquet").is_file())
    junk = results / "junk-parquet"
    shutil.copytree(good, junk)
    m = json.loads((junk / "run.json").read_text())
    m["run_id"] = "junk-parquet"
    (junk / "run.json").write_text(json.dumps(m))
    (junk / "samples.parquet").write_bytes(b"PAR1 garbage")
    bad["junk-parquet"] = "samples.parquet"
    logs = results / "train-dpo"
    (logs / "train_config.json").write_text("{oops")
    bad["train_config"] = str(logs / "train_config.json")
    other = results / "train-step-dpo" / "train_log.jsonl"
    lines = other.read_text().splitlines()
    lines[3] = "[1, 2]"
    lines[5] = json.dumps({"step": "abc", "loss": 0.5})
    other.write_text("\n".join(lines) + "\n")
    bad["train_log"] = f"{other}: skipped 2 malformed line(s) (line 4, 6)"
    return bad


def test_ingest_skips_each_bad_run_and_log_with_a_warning_and_keeps_the_rest(app_results, tmp_path):
    from stepdpo_bench.store import connect

    results = tmp_path / "results"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    bad = _poison(results)
    res = runner.invoke(app, ["ingest", str(results)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    warnings = [x for x in res.stderr.splitlines() if x.strip()]
    for key, fragment in bad.items():
        assert any(fragment in w for w in warnings), (key, fragment, res.stderr)
    assert "3 added" in res.stdout and "5 skipped" in res.stdout, res.stdout
    con = connect(results / "leaderboard.duckdb", read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
        per_run = dict(con.execute("SELECT run_name, count(*) FROM training_log GROUP BY run_name").fetchall())
    finally:
        con.close()
    assert sorted(per_run.values()) == [38, 40]  # two bad lines dropped; the log with a bad config still lands
