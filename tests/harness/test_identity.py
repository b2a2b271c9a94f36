"""Every eval option either changes the run id or is declared as not changing results.

The table below names each option of ``stepdpo-bench eval`` (read from the command itself, so a new option fails
this test until it is classified).  ``id`` options are changed one at a time and must give a new run id; ``same``
options must keep it (they change where or how fast a run is made, or only its leaderboard metadata).  Run ids
come from ``eval --dry-run``, the real planning path, with no model loaded.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from stepdpo_bench.cli import app

runner = CliRunner()
RUN_ID = re.compile(r"[\w.-]+__[\w.:-]+__[0-9a-f]{12}")

# option -> (kind, base, extra args); base is the command the change is made on:
#   "jsonl": --tasks jsonl:FILE on the hf backend; "math": math500 from --data-dir; "vllm", "openai": those backends
TABLE: dict[str, tuple[str, str, list[str]]] = {
    "model": ("id", "jsonl", ["--model", "{other_ckpt}"]),
    "tasks": ("id", "jsonl", ["--tasks", "jsonl:{other_jsonl}"]),
    "limit": ("id", "math", ["--limit", "3"]),
    "data_dir": ("id", "math", ["--data-dir", "{edited_data}"]),  # by content: an identical copy keeps the id
    "split_name": ("id", "math", ["--split", "train", "--tasks", "math"]),
    "subjects": ("id", "math", ["--subjects", "Algebra"]),
    "levels": ("id", "math", ["--levels", "5"]),
    "prompt": ("id", "jsonl", ["--prompt", "alpaca"]),
    "prompt_file": ("id", "jsonl", ["--prompt-file", "{prompt_file}"]),
    "max_tokens": ("id", "jsonl", ["--max-tokens", "17"]),
    "n": ("id", "jsonl", ["--n", "2", "--temperature", "0.7"]),
    "temperature": ("id", "jsonl", ["--temperature", "0.7"]),
    "top_p": ("id", "jsonl", ["--top-p", "0.9"]),
    "top_k": ("id", "jsonl", ["--top-k", "5"]),
    "min_p": ("id", "jsonl", ["--min-p", "0.1"]),
    "repetition_penalty": ("id", "jsonl", ["--repetition-penalty", "1.2"]),
    # the checkpoint's values become the run's sampling values (in the id); the tiny checkpoint sets none
    "generation_config": ("same", "jsonl", ["--generation-config", "model"]),
    "thinking": ("id", "jsonl", ["--thinking", "none"]),
    "grade_cut_traces": ("id", "jsonl", ["--grade-cut-traces"]),
    "chat_template_kwargs": ("id", "chat", ["--chat-template-kwargs", '{{"enable_thinking": false}}']),
    "seed": ("id", "jsonl", ["--seed", "1"]),
    "stop": ("id", "jsonl", ["--stop", "###"]),
    "question_field": ("id", "jsonl", ["--question-field", "q2"]),
    "answer_field": ("id", "jsonl", ["--answer-field", "a2"]),
    "convention": ("id", "jsonl", ["--convention", "gsm8k"]),
    "lenient_grading": ("id", "jsonl", ["--lenient-grading"]),
    "backend": ("id", "jsonl", ["--backend", "vllm"]),
    "revision": ("id", "jsonl", ["--revision", "v2"]),
    "dtype": ("id", "jsonl", ["--dtype", "bfloat16"]),
    "max_model_len": ("id", "vllm", ["--max-model-len", "64"]),
    # where the run lands: the same id under another folder
    "results": ("same", "jsonl", ["--results", "{elsewhere}"]),
    # leaderboard metadata: applied to the reused run (relabel), never a new run
    "method": ("same", "jsonl", ["--method", "sft"]),
    "tag": ("same", "jsonl", ["--tag", "main"]),
    "label": ("same", "jsonl", ["--label", "mine"]),
    "base_model": ("same", "jsonl", ["--base-model", "base"]),
    "group": ("same", "jsonl", ["--group", "recipe-a"]),
    # execution: how fast, how it is batched and checkpointed; the same samples (up to float noise)
    "chunk_size": ("same", "jsonl", ["--chunk-size", "3"]),
    "batch_size": ("same", "jsonl", ["--batch-size", "3"]),
    "trust_remote_code": ("same", "jsonl", ["--trust-remote-code"]),
    "tp": ("same", "vllm", ["--tp", "2"]),
    "dp": ("same", "vllm", ["--dp", "2"]),
    "gpu_memory_utilization": ("same", "vllm", ["--gpu-memory-utilization", "0.5"]),
    "enforce_eager": ("same", "vllm", ["--enforce-eager"]),
    "base_urls": ("same", "openai", ["--base-url", "http://127.0.0.1:10/v1"]),  # a fleet serving the same model
    "concurrency": ("same", "openai", ["--concurrency", "2"]),
    "retries": ("same", "openai", ["--retries", "1"]),
    "dry_run": ("same", "jsonl", []),  # every call here is a dry run
    # what is reported from the same samples: recomputed from them, never a new run
    "metrics": ("same", "jsonl", ["--metrics", "avg@1"]),
    # step verdicts are added beside a finished run (their own content address), never a new run
    "locate": ("same", "jsonl", ["--locate", "symbolic"]),
    "judge_model": ("same", "jsonl", ["--locate", "judge", "--judge-model", "j", "--judge-base-url", "http://x/v1"]),
    "judge_base_url": ("same", "jsonl", ["--locate", "judge", "--judge-model", "j", "--judge-base-url", "http://y/v1"]),
}


@pytest.fixture(scope="module")
def paths(tiny_ckpt, shared_data, tmp_path_factory) -> dict[str, str]:
    from stepdpo_bench.tiny import build_tiny_checkpoint

    from ..conftest import _corpus

    root = tmp_path_factory.mktemp("identity")
    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1), "q2": f"{i}+1=?", "a2": i + 1} for i in range(5)]
    (root / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "other.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (root / "prompt.txt").write_text("Question: {question}\nAnswer:")
    edited = root / "data"
    shutil.copytree(shared_data / "math500", edited / "math500")
    shutil.copytree(shared_data / "math", edited / "math")
    lines = (edited / "math500" / "test.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["answer"] = first["answer"] + " "  # one gold differs by a byte: other data
    (edited / "math500" / "test.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    same = root / "same-data"
    shutil.copytree(shared_data / "math500", same / "math500")
    return {
        "ckpt": str(tiny_ckpt),
        "other_ckpt": str(build_tiny_checkpoint(root / "other", _corpus(shared_data), seed=3)),
        "jsonl": str(root / "mine.jsonl"),
        "other_jsonl": str(root / "other.jsonl"),
        "prompt_file": str(root / "prompt.txt"),
        "edited_data": str(edited),
        "same_data": str(same),
        "data": str(shared_data),
        "results": str(root / "results"),
        "elsewhere": str(root / "elsewhere"),
    }


def _base(kind: str, p: dict[str, str]) -> list[str]:
    common = ["--max-tokens", "16", "--results", p["results"]]
    if kind == "jsonl":
        return ["--model", p["ckpt"], "--backend", "hf", "--tasks", f"jsonl:{p['jsonl']}", *common]
    if kind == "math":
        return ["--model", p["ckpt"], "--backend", "hf", "--tasks", "math500", "--data-dir", p["data"], *common]
    if kind == "chat":  # the model's chat template (what --chat-template-kwargs reach)
        return ["--model", p["ckpt"], "--backend", "hf", "--tasks", f"jsonl:{p['jsonl']}", "--prompt", "chat", *common]
    if kind == "vllm":
        return ["--model", p["ckpt"], "--backend", "vllm", "--tasks", f"jsonl:{p['jsonl']}", *common]
    url = "http://127.0.0.1:9/v1"
    return ["--model", "served", "--backend", "openai", "--base-url", url, "--tasks", f"jsonl:{p['jsonl']}", *common]


def run_id(args: list[str]) -> str:
    res = runner.invoke(app, ["eval", *args, "--dry-run"])
    assert res.exit_code == 0, res.output
    ids = RUN_ID.findall(res.stdout)
    assert len(ids) == 1, res.stdout
    return ids[0].split("__")[-1]


def test_every_eval_option_is_classified():
    cmd = typer.main.get_command(app).commands["eval"]
    names = {p.name for p in cmd.params}
    assert names == set(TABLE), f"unclassified: {names - set(TABLE)}; stale: {set(TABLE) - names}"


@pytest.mark.parametrize("option", sorted(TABLE))
def test_option_changes_the_run_id_or_is_declared_not_to(option, paths):
    kind, base_kind, extra = TABLE[option]
    base = _base(base_kind, paths)
    before = run_id(base)
    after = run_id([*base, *(x.format(**paths) for x in extra)])  # a repeated option: the last value wins
    if kind == "id":
        assert after != before, f"{option} changes results but not the run id"
    else:
        assert after == before, f"{option} is declared not to change results, yet it changes the run id"


def test_data_is_identified_by_content_not_by_folder(paths):
    base = _base("math", paths)
    assert run_id(base) == run_id([*base, "--data-dir", paths["same_data"]])


def test_reusing_a_run_applies_its_new_labels(tiny_ckpt, tmp_path):
    from stepdpo_bench.runs import RunDir

    args = ["eval", "--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "arith", "--limit", "2"]
    args += ["--max-tokens", "4", "--results", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, [*args, "--tag", "main", "--method", "sft", "--label", "mine"])
    assert res.exit_code == 0, res.output
    assert "now with label mine; method sft; tags +main" in res.stderr
    (run,) = [RunDir(d) for d in tmp_path.iterdir() if (d / "run.json").is_file()]
    m = run.manifest()
    assert (m.model.tags, m.model.method, m.model.label) == (["main"], "sft", "mine")
    plan = runner.invoke(app, [*args, "--dry-run"])
    assert "finished: reused" in plan.stdout and Path(run.path).name in plan.stdout


def test_the_default_budget_follows_the_tasks(paths):
    """--max-tokens left out: 2048, or 32768 when the command includes a set only the reasoning suite has (one
    budget for the whole command, so the suite's math500 column matches its other columns)."""
    from stepdpo_bench.tasks import default_budget

    assert default_budget(["gsm8k", "math500"]) == 2048 and default_budget(["math500", "aime24"]) == 32768
    model = ["--model", paths["ckpt"], "--backend", "hf", "--data-dir", paths["data"], "--results", paths["results"]]

    def ids(tasks: str, *extra: str) -> list[str]:
        res = runner.invoke(app, ["eval", *model, "--tasks", tasks, *extra, "--dry-run"])
        assert res.exit_code == 0, res.output
        return [x.split("__")[-1] for x in RUN_ID.findall(res.stdout)]

    assert ids("math500") == ids("math500", "--max-tokens", "2048")
    assert ids("aime24,math500") == ids("aime24,math500", "--max-tokens", "32768")
    assert ids("aime24,math500")[1] != ids("math500")[0]
