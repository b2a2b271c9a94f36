"""End to end on a tiny real checkpoint with the transformers backend: run files, reuse, resume, regrade."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.grading import GRADER_VERSION
from stepdpo_bench.runs import SAMPLE_FIELDS, RunDir, make_run_id

from ..helpers import runs_by_task

pytest.importorskip("transformers")
runner = CliRunner()


def _eval(args: list[str]):
    return runner.invoke(app, ["eval", *args], catch_exceptions=False)


def test_hf_end_to_end_three_tasks(tiny_ckpt, shared_data, tmp_path):
    out = tmp_path / "results"
    args = [
        "--model",
        str(tiny_ckpt),
        "--backend",
        "hf",
        "--tasks",
        "gsm8k,math500,odyssey",
        "--limit",
        "3",
        "--data-dir",
        str(shared_data),
        "--max-tokens",
        "16",
        "--out",
        str(out),
    ]
    res = _eval(args)
    assert res.exit_code == 0, res.output
    runs = runs_by_task(out)
    assert set(runs) == {"gsm8k", "math500", "odyssey"}
    for name, run in runs.items():
        assert run.manifest().task.name == name
        m = run.manifest()
        assert m.status == "done" and m.grader_version == GRADER_VERSION
        assert m.task.n_problems == 3 and len(m.task.data_sha256) == 64
        assert m.sampling.backend == "hf" and m.sampling.max_tokens == 16
        assert m.model.fingerprint and m.prompt.name == "qwen2-boxed"
        met = m.metrics
        assert met["n_samples"] == 3 and 0 <= met["accuracy"] <= 1 and met["ci95"][0] <= met["ci95"][1]
        assert met["mean_tokens"] <= 16
        rows = pq.read_table(run.path / "samples.parquet").to_pylist()
        assert len(rows) == 3 and set(rows[0]) == set(SAMPLE_FIELDS)
        assert all(r["prompt"].startswith("<|im_start|>system") and r["run_id"] == run.run_id for r in rows)
        assert all(r["n_tokens"] <= 16 and r["finish_reason"] in ("stop", "length") for r in rows)
        jsonl = (run.path / "samples.jsonl").read_text().splitlines()
        assert len(jsonl) == 3
    # the same command again reuses every run: nothing is generated, nothing duplicated
    res = _eval(args)
    assert res.exit_code == 0 and res.output.count("reused") >= 3
    assert all(len((r.path / "samples.jsonl").read_text().splitlines()) == 3 for r in runs_by_task(out).values())


def test_sampling_n_and_chat_prompt(tiny_ckpt, tmp_path):
    out = tmp_path / "results"
    res = _eval(
        [
            "--model",
            str(tiny_ckpt),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "4",
            "--n",
            "3",
            "--temperature",
            "1.0",
            "--max-tokens",
            "8",
            "--prompt",
            "chat",
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    m = next(iter(runs_by_task(out).values())).manifest()
    assert m.metrics["n_samples"] == 12 and set(m.metrics["pass@k"]) == {"1", "2", "3"}
    assert "maj@k" in m.metrics
    rows = RunDir(out / m.run_id).read_samples()
    assert sorted({r["sample_idx"] for r in rows}) == [0, 1, 2]
    assert rows[0]["prompt"].startswith("<|im_start|>user\n")


def test_torn_last_line_is_repaired_on_resume(tiny_ckpt, tmp_path):
    out = tmp_path / "results"
    args = [
        "--model",
        str(tiny_ckpt),
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        "6",
        "--max-tokens",
        "8",
        "--chunk-size",
        "2",
        "--out",
        str(out),
    ]
    assert _eval(args).exit_code == 0
    run = next(iter(runs_by_task(out).values()))
    lines = (run.path / "samples.jsonl").read_text().splitlines(keepends=True)
    # simulate a crash: manifest back to running, last two samples lost, a torn half line at the end
    m = run.manifest()
    m.status = "running"
    run.write_manifest(m)
    (run.path / "samples.parquet").unlink()
    (run.path / "samples.jsonl").write_text("".join(lines[:4]) + lines[4][:20])
    res = _eval(args)
    assert res.exit_code == 0, res.output
    assert "resumed" in res.output
    rows = [json.loads(x) for x in (run.path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len({r["problem_id"] for r in rows}) == 6


def test_regrade_in_place_and_to_a_new_grader_version(tiny_ckpt, tmp_path):
    out = tmp_path / "results"
    assert (
        _eval(
            [
                "--model",
                str(tiny_ckpt),
                "--backend",
                "hf",
                "--tasks",
                "arith",
                "--limit",
                "3",
                "--max-tokens",
                "8",
                "--out",
                str(out),
            ]
        ).exit_code
        == 0
    )
    run = next(iter(runs_by_task(out).values()))
    # plant a completion whose answer is right: regrade must find it without generating
    rows = run.read_samples()
    for r in rows[1:]:  # a random model may guess right: make the others surely wrong
        r["completion"], r["correct"] = f"Step 1: ...\nThe answer is: {int(r['gold']) + 1}", False
    rows[0]["completion"], rows[0]["correct"] = f"Step 1: ...\nThe answer is: {rows[0]['gold']}", False
    run.compact(rows)
    res = runner.invoke(app, ["regrade", run.run_id, "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = run.manifest()
    assert m.regraded["changed"] == 1 and m.metrics["n_correct"] == 1 and m.run_id == run.run_id
    # a run graded by an older grader is re-scored into a new run id beside it
    # (as if written by grader 0.9.0: its id is the hash of an identity naming that grader)
    m.grader.version = m.identity["grader_version"] = "0.9.0"
    m.run_id = make_run_id(m.identity)
    run.path.rename(out / m.run_id)
    run = RunDir(out / m.run_id)
    run.write_manifest(m)
    res = runner.invoke(app, ["regrade", str(run.path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    others = [RunDir(d) for d in out.iterdir() if d.name != run.run_id]
    assert len(others) == 1
    nm = others[0].manifest()
    assert nm.regraded_from == run.run_id and nm.grader_version == GRADER_VERSION
    assert nm.metrics["n_correct"] == 1


def test_a_second_writer_of_the_same_run_fails_fast(tiny_ckpt, tmp_path):
    out = tmp_path / "results"
    args = [
        "--model",
        str(tiny_ckpt),
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        "2",
        "--max-tokens",
        "4",
        "--out",
        str(out),
    ]
    assert _eval(args).exit_code == 0
    run = next(iter(runs_by_task(out).values()))
    m = run.manifest()
    m.status = "running"
    run.write_manifest(m)
    with run.exclusive():  # another job is writing this run right now
        res = runner.invoke(app, ["eval", *args])
    assert res.exit_code == 2 and "another process is writing this run" in res.stderr
    assert _eval(args).exit_code == 0 and run.manifest().status == "done"


def test_reasoning_suite_with_metrics_on_hf(tiny_ckpt, shared_data, tmp_path):
    """The issue's command: every set of the suite on a tiny checkpoint, sampled, with avg@k / pass@k / maj@k and
    their intervals in run.json and the terminal; another --metrics on the finished runs recomputes, never reruns."""
    out = tmp_path / "results"
    base = ["--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "reasoning", "--data-dir", str(shared_data)]
    base += ["--limit", "2", "--max-tokens", "8", "--n", "4", "--temperature", "0.8", "--out", str(out)]
    res = _eval([*base, "--metrics", "avg@4,pass@2,maj@4"])
    assert res.exit_code == 0, res.output
    runs = runs_by_task(out)
    assert set(runs) == {"aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "college_math"}
    for run in runs.values():
        met = run.manifest().metrics
        assert met["requested"] == ["avg@4", "pass@2", "maj@4"]
        for name in ("avg@4", "pass@2", "maj@4", "pass@1"):
            block = met["at_k"][name]
            assert 0 <= block["ci95"][0] <= block["value"] <= block["ci95"][1] <= 1
        assert met["at_k"]["avg@4"]["value"] == met["accuracy"]
    assert "avg@4 % [95% CI]" in res.output.replace("\n", " ") or "avg@4" in res.output
    again = _eval([*base, "--metrics", "avg@2"])
    assert again.exit_code == 0 and "now with metrics avg@2" in again.output
    assert all(r.manifest().metrics["requested"] == ["avg@2"] for r in runs_by_task(out).values())
    bad = _eval([*base, "--metrics", "pass@8"])
    assert bad.exit_code == 2 and "set --n 8 or more" in bad.output
    # the paper layout from the index: one row, the seven sets as columns, the macro average
    assert runner.invoke(app, ["ingest", str(out)]).exit_code == 0
    md = runner.invoke(app, ["leaderboard", "--results", str(out), "--suite", "reasoning", "--format", "markdown"])
    assert md.exit_code == 0, md.output
    head, _, row = md.output.strip().splitlines()
    assert head.split(" | ")[2:] == [
        "aime24",
        "aime25",
        "amc23",
        "math500",
        "minerva_math",
        "olympiadbench",
        "college_math",
        "macro avg |",
    ]
    assert "avg@4, T 0.8" in row and "subset runs" in row and row.count("[") == 8


def _draws(out):
    """{n: (samples by (problem, index), manifest)} of the runs under ``out``."""
    runs = {}
    for d in out.iterdir():
        if d.is_dir() and (d / "run.json").is_file():
            r = RunDir(d)
            m = r.manifest()
            runs[m.sampling.n] = ({(s["problem_id"], s["sample_idx"]): s["completion"] for s in r.read_samples()}, m)
    return runs


def test_more_samples_reuse_the_first_ones_exactly(tiny_ckpt, shared_data, tmp_path):
    """Per-sample seeds: --n 4 after --n 2 copies the two samples per problem and draws only two more, and the
    result is what a fresh --n 4 run (another folder) draws, sample for sample."""
    base = ["--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "aime24", "--data-dir", str(shared_data)]
    base += ["--limit", "5", "--max-tokens", "10", "--temperature", "0.9", "--batch-size", "2", "--chunk-size", "4"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert _eval([*base, "--n", "2", "--out", str(a)]).exit_code == 0
    res = _eval([*base, "--n", "4", "--out", str(a)])
    assert res.exit_code == 0 and "reused from" in res.output
    assert _eval([*base, "--n", "4", "--out", str(b)]).exit_code == 0
    runs, fresh = _draws(a), _draws(b)
    two, (four, m4), (fresh4, mf) = runs[2][0], runs[4], fresh[4]
    assert all(four[k] == two[k] for k in two) and len(four) == 20
    assert four == fresh4
    assert m4.extra["reused_samples"]["samples"] == 10 and m4.timings.tokens_out < mf.timings.tokens_out
    assert len(set(fresh4.values())) > 10  # the draws differ between samples (seeds are per sample)


def _with_generation_config(tiny_ckpt, tmp_path, **values):
    import shutil

    ckpt = tmp_path / "with-gc"
    shutil.copytree(tiny_ckpt, ckpt)
    gc_file = ckpt / "generation_config.json"
    gc = json.loads(gc_file.read_text()) if gc_file.is_file() else {}
    gc_file.write_text(json.dumps({**gc, **values}))
    return ckpt


def test_a_checkpoints_generation_config_never_changes_a_run(tiny_ckpt, shared_data, tmp_path):
    """Same weights, same seed, --temperature 1.0 --top-p 1.0: the run samples the same completions whether or
    not the checkpoint's generation_config.json carries top_k 20 and repetition_penalty 1.5 (as chat checkpoints
    carry values like these).  Before, 0 of 16 were equal.  --generation-config model takes its values, records
    them as the run's, and equals a run given those values by hand."""
    gc = _with_generation_config(
        tiny_ckpt, tmp_path, top_k=20, repetition_penalty=1.5, temperature=0.7, top_p=0.8, do_sample=True
    )
    base = ["--backend", "hf", "--tasks", "gsm8k", "--data-dir", str(shared_data), "--limit", "8"]
    base += ["--max-tokens", "16", "--n", "2", "--temperature", "1.0", "--top-p", "1.0"]
    for model, out in ((tiny_ckpt, "clean"), (gc, "gc")):
        assert _eval(["--model", str(model), *base, "--out", str(tmp_path / out)]).exit_code == 0
    (clean,), (leaky,) = runs_by_task(tmp_path / "clean").values(), runs_by_task(tmp_path / "gc").values()

    def texts(run):
        return [s["completion"] for s in sorted(run.read_samples(), key=lambda s: (s["problem_id"], s["sample_idx"]))]

    assert texts(clean) == texts(leaky)
    assert len(set(texts(clean))) > 4  # sampled, not 16 copies of one text
    res = _eval(["--model", str(gc), *base, "--generation-config", "model", "--out", str(tmp_path / "model")])
    assert res.exit_code == 0 and "top_k=20" in res.output
    (taken,) = runs_by_task(tmp_path / "model").values()
    s = taken.manifest().sampling
    assert (s.temperature, s.top_p, s.top_k, s.repetition_penalty) == (0.7, 0.8, 20, 1.5)
    by_hand = ["--temperature", "0.7", "--top-p", "0.8", "--top-k", "20", "--repetition-penalty", "1.5"]
    args = ["--model", str(tiny_ckpt), *base, *by_hand, "--out", str(tmp_path / "hand")]
    assert _eval(args).exit_code == 0
    (hand,) = runs_by_task(tmp_path / "hand").values()
    assert texts(hand) == texts(taken) and texts(hand) != texts(clean)
