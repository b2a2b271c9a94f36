"""Interop: our tasks inside a real lm-eval run, its samples imported back; Step-DPO files; bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir
from stepdpo_bench.tasks import arith, load_task

runner = CliRunner()


def _lm_eval(tiny_ckpt, tasks: str, metadata: dict, out, max_tokens: int = 24) -> None:
    tasks_dir = runner.invoke(app, ["lm-eval-tasks"]).stdout.strip()
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_ckpt},dtype=float32",
        "--tasks",
        tasks,
        "--include_path",
        tasks_dir,
        "--metadata",
        json.dumps(metadata),
        "--gen_kwargs",
        f"max_gen_toks={max_tokens}",
        "--log_samples",
        "--output_path",
        str(out),
        "--batch_size",
        "4",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def lm_eval_ok():
    pytest.importorskip("lm_eval")


def test_our_tasks_in_lm_eval_and_back(lm_eval_ok, tiny_ckpt, shared_data, tmp_path):
    _lm_eval(
        tiny_ckpt,
        "stepdpo_gsm8k,stepdpo_math500,stepdpo_odyssey",
        {"data_dir": str(shared_data), "limit": 4},
        tmp_path / "lm",
    )
    res = runner.invoke(app, ["import", "lm-eval", str(tmp_path / "lm"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    runs = {RunDir(d).manifest().task.name: RunDir(d) for d in (tmp_path / "r").iterdir()}
    assert set(runs) == {"gsm8k", "math500", "odyssey"}
    for name, run in runs.items():
        m = run.manifest()
        assert m.source == "lm-eval" and m.metrics["n_samples"] == 4
        assert m.task.data_sha256 == load_task(name, shared_data).data_sha256  # same data as our eval
        assert m.metrics["accuracy"] == pytest.approx(m.extra["metrics_source"]["acc,none"])
        rows = run.read_samples()
        assert rows[0]["prompt"].startswith("<|im_start|>system") and rows[0]["problem_id"].startswith(
            ("gsm8k/", "test/", "odyssey/")
        )


def test_imported_accuracy_equals_lm_evals_on_the_same_generations(lm_eval_ok, tiny_ckpt, tmp_path):
    """A non-trivial check: golds are built from this model's own greedy answers (one in three off by one),
    so lm-eval scores a real mixture of right and wrong, and the import must agree sample by sample."""
    out = tmp_path / "ours"
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_ckpt),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "12",
            "--max-tokens",
            "24",
            "--dtype",
            "float32",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in out.iterdir()]
    probs = {p.id: p for p in arith.generate("test", 12).problems}
    lines = []
    for i, r in enumerate(run.read_samples()):
        pred = r["pred"] if r["pred"] is not None and r["pred"].lstrip("-").isdigit() else None
        ans = "987654" if pred is None else str(int(pred) + (1 if i % 3 == 2 else 0))
        lines.append(json.dumps({"question": probs[r["problem_id"]].question, "answer": ans}))
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(lines) + "\n")
    _lm_eval(
        tiny_ckpt, "stepdpo_jsonl", {"path": str(data), "convention": "arith", "prompt": "arith-step"}, tmp_path / "lm"
    )
    reported = json.loads(next((tmp_path / "lm").rglob("results_*.json")).read_text())["results"]["stepdpo_jsonl"]
    res = runner.invoke(app, ["import", "lm-eval", str(tmp_path / "lm"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    (imp,) = [RunDir(d) for d in (tmp_path / "r").iterdir()]
    m = imp.manifest()
    assert m.metrics["accuracy"] == pytest.approx(reported["acc,none"])
    assert m.extra["disagreements"] == 0
    assert reported["acc,none"] > 0  # the generations really matched some golds


STEP_DPO = [
    {
        "prompt": "<|im_start|>user\nWhat is 1/2+1/2?<|im_end|>\n<|im_start|>assistant\n",
        "completion": "Step 1: 1/2+1/2 = 1.\nThe answer is: $\\boxed{1}$",
        "extract_answer": "1",
        "prompt_answer": "1",
        "result": True,
        "type": "Algebra",
        "filepath": "test/algebra/1.json",
    },
    {
        "prompt": "<|im_start|>user\nSolve x^2=4 for x>0<|im_end|>\n<|im_start|>assistant\n",
        "completion": "Step 1: x = 2.\nThe answer is: $\\boxed{2.0}$",
        "extract_answer": "2.0",
        "prompt_answer": ["2"],
        "result": False,
        "type": "Algebra",
        "filepath": "test/algebra/2.json",
    },
    {
        "prompt": "<|im_start|>user\nInterval?<|im_end|>\n<|im_start|>assistant\n",
        "completion": "So the answer is \\boxed{(2,5]}",
        "extract_answer": "(2,5]",
        "prompt_answer": "[2,5)",
        "result": True,
        "type": "Intermediate Algebra",
        "filepath": "test/intermediate_algebra/3.json",
    },
]


def test_step_dpo_file_is_regraded_and_disagreements_kept(tmp_path):
    f = tmp_path / "qwen2-7b-stepdpo_math.json"
    f.write_text(json.dumps(STEP_DPO))
    res = runner.invoke(app, ["import", "step-dpo", str(f), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in (tmp_path / "r").iterdir()]
    m = run.manifest()
    assert m.source == "step-dpo" and m.model.label == "qwen2-7b-stepdpo_math"
    rows = {r["problem_id"]: r for r in run.read_samples()}
    # theirs missed 2.0 == 2 and accepted the flipped interval: ours disagrees on both
    assert rows["test/algebra/2.json"]["correct"] and not rows["test/algebra/2.json"]["other_correct"]
    assert not rows["test/intermediate_algebra/3.json"]["correct"]
    assert rows["test/intermediate_algebra/3.json"]["other_correct"]
    assert m.extra["disagreements"] == 2 and m.metrics["accuracy"] == pytest.approx(2 / 3)
    # importing again replaces the same run
    assert runner.invoke(app, ["import", "step-dpo", str(f), "--out", str(tmp_path / "r")]).exit_code == 0
    assert len(list((tmp_path / "r").iterdir())) == 1
    # ingested, the disagreements show on the audit list
    assert runner.invoke(app, ["ingest", str(tmp_path / "r")]).exit_code == 0


def test_bad_input_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "r"
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["import", "lm-eval", str(tmp_path / "empty"), "--out", str(out)])
    assert res.exit_code == 2 and "no lm-eval results_*.json" in res.stderr
    old = tmp_path / "old"
    old.mkdir()
    (old / "results_2024.json").write_text(json.dumps({"results": {"gsm8k": {}}}))
    res = runner.invoke(app, ["import", "lm-eval", str(old), "--out", str(out)])
    assert res.exit_code == 2 and "missing field 'configs'" in res.stderr
    noans = tmp_path / "noans"
    noans.mkdir()
    (noans / "results_T.json").write_text(
        json.dumps({"results": {"t": {"acc,none": 0.0}}, "configs": {"t": {}}, "config": {"model": "hf"}})
    )
    (noans / "samples_t_T.jsonl").write_text(
        json.dumps({"doc_id": 0, "doc": {"q": "?"}, "target": "", "resps": [["x"]], "acc": 0}) + "\n"
    )
    res = runner.invoke(app, ["import", "lm-eval", str(noans), "--out", str(out)])
    assert res.exit_code == 2 and "task 't' has no gold answer" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"prompt": "p", "completion": "c"}]))
    res = runner.invoke(app, ["import", "step-dpo", str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "record 0: missing field 'prompt_answer'" in res.stderr
    assert not out.exists() or not any(out.iterdir())


def test_the_reasoning_suite_inside_lm_eval(lm_eval_ok, tiny_ckpt, shared_data, tmp_path):
    """stepdpo_aime24 ... stepdpo_college_math (and their group) run inside lm-eval on our data, prompts and
    grader, and come back as runs of our tasks with our problem ids and data checksums."""
    _lm_eval(tiny_ckpt, "stepdpo_reasoning_suite", {"data_dir": str(shared_data), "limit": 2}, tmp_path / "lm", 8)
    res = runner.invoke(app, ["import", "lm-eval", str(tmp_path / "lm"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    runs = {RunDir(d).manifest().task.name: RunDir(d) for d in (tmp_path / "r").iterdir()}
    assert set(runs) == {"aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "college_math"}
    for name, run in runs.items():
        m = run.manifest()
        task = load_task(name, shared_data)
        assert m.task.data_sha256 == task.data_sha256 and m.metrics["n_samples"] == 2
        assert {r["problem_id"] for r in run.read_samples()} == {p.id for p in task.problems[:2]}
        assert m.metrics["accuracy"] == pytest.approx(m.extra["metrics_source"]["acc,none"])
