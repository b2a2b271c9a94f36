"""Bad input: one clear line on stderr, a non-zero exit, and nothing already finished lost."""

from __future__ import annotations

import errno
import json

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

pytest.importorskip("transformers")
runner = CliRunner()


def _err(res) -> str:
    lines = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def _eval(*args: str):
    return runner.invoke(app, ["eval", *args])


def test_unknown_task_and_prompt(tiny_ckpt, tmp_path):
    res = _eval("--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "mmlu", "--out", str(tmp_path))
    assert res.exit_code == 2 and "unknown task 'mmlu'" in _err(res)
    res = _eval(
        "--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "arith", "--prompt", "nope", "--out", str(tmp_path)
    )
    assert res.exit_code == 2 and "unknown prompt 'nope'" in _err(res)


def test_missing_model_path(tmp_path):
    res = _eval("--model", str(tmp_path / "no-such-ckpt"), "--backend", "hf", "--tasks", "arith")
    assert res.exit_code == 2 and "no such checkpoint directory" in _err(res)


def test_chat_prompt_without_chat_template(tiny_ckpt_nochat, tmp_path):
    res = _eval(
        "--model",
        str(tiny_ckpt_nochat),
        "--backend",
        "hf",
        "--tasks",
        "arith",
        "--limit",
        "2",
        "--prompt",
        "chat",
        "--out",
        str(tmp_path),
    )
    assert res.exit_code == 2 and "chat template" in _err(res)


def test_malformed_jsonl_names_file_and_line(tiny_ckpt, tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n" + '{"question": "oops"\n')
    res = _eval("--model", str(tiny_ckpt), "--backend", "hf", "--tasks", f"jsonl:{f}", "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "mine.jsonl:2: not valid JSON" in _err(res)


def test_unreachable_server(tmp_path):
    pytest.importorskip("httpx")
    res = _eval(
        "--model",
        "tiny",
        "--backend",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--retries",
        "1",
        "--tasks",
        "arith",
        "--limit",
        "2",
        "--max-tokens",
        "4",
        "--out",
        str(tmp_path),
    )
    assert res.exit_code == 2
    line = _err(res)
    assert "is the server up?" in line and "127.0.0.1:9" in line and "after 2 attempts" in line
    (run,) = [RunDir(d) for d in tmp_path.iterdir()]
    assert run.manifest().status == "failed"


def test_disk_full_keeps_finished_samples_and_resumes(tiny_ckpt, tmp_path, monkeypatch):
    out = tmp_path / "r"
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
    real = RunDir.append_samples
    calls = {"n": 0}

    def full_after_two_chunks(self, samples):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path / "samples.jsonl"))
        return real(self, samples)

    monkeypatch.setattr(RunDir, "append_samples", full_after_two_chunks)
    res = _eval(*args)
    assert res.exit_code == 2
    assert "No space left on device" in _err(res) and "rerun to resume" in _err(res)
    (run,) = [RunDir(d) for d in out.iterdir()]
    assert run.manifest().status == "failed" and len(run.read_samples()) == 4
    monkeypatch.setattr(RunDir, "append_samples", real)
    res = _eval(*args)
    assert res.exit_code == 0 and "resumed" in res.stderr
    assert run.manifest().status == "done" and len(run.read_samples()) == 6


def test_error_text_with_brackets_is_shown_verbatim(tmp_path):
    bad = tmp_path / "[weird] name.jsonl"
    bad.write_text("{oops\n")
    res = _eval("--model", "m", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--tasks", f"jsonl:{bad}")
    assert res.exit_code == 2 and "[weird] name.jsonl:1: not valid JSON" in _err(res)
