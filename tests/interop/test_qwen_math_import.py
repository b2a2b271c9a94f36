"""``import qwen-math``: files laid out as Qwen2.5-Math's math_eval.py writes them (idx, question, gt_cot, gt, the
record's kept fields, code, pred, report, score; one line per problem), built here from the real set files.
bench/reasoning.py imports files written by the peer's own evaluate + save_jsonl (a copy of the peer, not in CI)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir

runner = CliRunner()


def _peer_file(shared_data, tmp_path, name="olympiadbench", k=3):
    recs = [json.loads(line) for line in (shared_data / name / "test.jsonl").open()][:4]
    lines = []
    for i, r in enumerate(recs):
        gt = r["final_answer"][0].strip("$") if name == "olympiadbench" else r["answer"]
        right = f"So the answer is $\\boxed{{{gt}}}$."
        code = [right, "I get $\\boxed{12345}$.", right][:k]
        # the peer's verdicts as it would store them; line 1's are deliberately the other way round
        score = [True, False, True][:k] if i != 1 else [False, True, False][:k]
        lines.append(
            {
                "idx": i,
                "question": r.get("question") or r["problem"],
                "gt_cot": None,
                "gt": gt,
                **({"answer_type": r["answer_type"]} if "answer_type" in r else {}),
                "code": code,
                "pred": [gt, "12345", gt][:k],
                "report": [None] * k,
                "score": score,
            }
        )
    path = tmp_path / "Qwen2.5-Math-7B" / name / "test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    return path


def test_import_regrades_keeps_theirs_and_shows_on_the_board(shared_data, tmp_path):
    f = _peer_file(shared_data, tmp_path)
    out = tmp_path / "r"
    res = runner.invoke(
        app,
        ["import", "qwen-math", str(f), "--task", "olympiadbench", "--data-dir", str(shared_data), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in out.iterdir()]
    m = run.manifest()
    assert m.source == "qwen2.5-math" and m.model.label == "Qwen2.5-Math-7B" and m.prompt.name == "qwen25-math-cot"
    assert m.task.n_problems == 4 and m.sampling.n == 3 and m.extra["gold"] == "our olympiadbench loader"
    rows = run.read_samples()
    assert {r["problem_id"] for r in rows} == {
        "olympiadbench/1606",
        "olympiadbench/1610",
        "olympiadbench/1612",
        "olympiadbench/1613",
    }
    assert [r["correct"] for r in rows if r["sample_idx"] == 1] == [False] * 4
    assert all(r["correct"] for r in rows if r["sample_idx"] != 1)
    assert m.extra["disagreements"] == 3  # line 1's three reversed verdicts
    assert m.metrics["at_k"]["pass@2"]["value"] == 1.0
    assert runner.invoke(app, ["ingest", str(out)]).exit_code == 0
    board = runner.invoke(app, ["leaderboard", "--results", str(out), "--format", "json"])
    (row,) = json.loads(board.output)
    assert row["task"] == "olympiadbench" and row["source"] == "qwen2.5-math"
    from app.data import Data

    audit = Data(out / "leaderboard.duckdb").audit()
    assert len(audit) == 3 and set(audit["other_grader"]) == {"imported tool (qwen2.5-math)"}


def test_without_our_data_their_gt_is_the_gold(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("STEPDPO_DATA_DIR", raising=False)
    f = _peer_file(shared_data, tmp_path, k=2)
    out = tmp_path / "r"
    res = runner.invoke(app, ["import", "qwen-math", str(f), "--task", "my_set", "--model", "m", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (run,) = [RunDir(d) for d in out.iterdir()]
    assert run.manifest().extra["gold"].startswith("the file's gt")
    assert {r["problem_id"] for r in run.read_samples()} == {f"my_set/{i}" for i in range(4)}


def test_malformed_files_are_refused_naming_line_and_field(shared_data, tmp_path):
    f = _peer_file(shared_data, tmp_path)
    lines = f.read_text().splitlines()
    out = tmp_path / "r"
    cases = [
        (lambda r: r.pop("score"), "missing field 'score'"),
        (lambda r: r.update(code="text"), "field 'code' should be a non-empty list"),
        (lambda r: r.update(pred=["1"]), "should be lists of one length"),
        (lambda r: r.update(idx="3"), "field 'idx' should be an integer"),
        (lambda r: r.update(question="another problem"), "is not olympiadbench's problem olympiadbench/1610"),
    ]
    for edit, message in cases:
        rec = json.loads(lines[1])
        edit(rec)
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join([lines[0], json.dumps(rec), *lines[2:]]) + "\n")
        args = ["import", "qwen-math", str(bad), "--task", "olympiadbench", "--data-dir", str(shared_data)]
        res = runner.invoke(app, [*args, "--out", str(out)])
        assert res.exit_code == 2 and "bad.jsonl:2: " in res.stderr and message in res.stderr, res.stderr
    bad.write_text(lines[0] + "\n{not json\n")
    res = runner.invoke(app, ["import", "qwen-math", str(bad), "--task", "olympiadbench", "--out", str(out)])
    assert res.exit_code == 2 and "bad.jsonl:2: not valid JSON" in res.stderr
    assert not out.exists() or not any(out.iterdir())
