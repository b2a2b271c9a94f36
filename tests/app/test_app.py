"""Every page of the app, driven headlessly with Streamlit's AppTest on the fixture runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import norm

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from stepdpo_bench.runs import RunDir
from stepdpo_bench.tasks import arith

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


@pytest.fixture
def at(app_results, monkeypatch):
    monkeypatch.setenv("STEPDPO_DB", str(app_results / "leaderboard.duckdb"))
    t = AppTest.from_file(MAIN, default_timeout=60)
    t.run()
    assert not t.exception, t.exception
    return t


def _page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    parts += [t.value for t in at.text]
    return "\n".join(str(p) for p in parts)


def test_leaderboard_page(at):
    df = at.dataframe[0].value
    assert list(df["model"]) == ["tiny-step-dpo", "tiny-dpo"]
    assert list(df["tier"]) == [1, 1] and list(df["accuracy %"]) == [50.0, 33.3]
    assert "Same tier" in _text(at)
    # the tier head rests on nothing: its cell is empty (it said "no shared problems"); the other row names its test
    notes = list(df["vs tier head"])
    assert notes[0] == "" and "shared" in notes[1] and "no shared" not in notes[1], notes
    # step columns: every planted right answer of B is right for the wrong reasons (its step 1 states nothing)
    assert list(df["steps by"]) == ["exact", "exact"]
    assert df["right for wrong reasons % [CI]"].iloc[0].startswith("100.0 [")
    at.text_input(key="lb_search").input("step").run()
    assert list(at.dataframe[0].value["model"]) == ["tiny-step-dpo"]
    at.text_input(key="lb_search").input("").run()
    at.multiselect(key="lb_methods").set_value(["dpo"]).run()
    assert list(at.dataframe[0].value["model"]) == ["tiny-dpo"]


def test_compare_page_one_click_dpo_vs_stepdpo(at):
    _page(at, "Compare")
    quick = at.selectbox(key="quick")
    assert "DPO vs Step-DPO on tiny-base · arith" in quick.options
    quick.set_value("DPO vs Step-DPO on tiny-base · arith").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A accuracy"] == "33.3%" and metrics["B accuracy"] == "50.0%"
    assert metrics["p (Tango score)"] == f"{2 * norm.sf(5 / 15**0.5):.3g}"  # (10 - 5) / sqrt(10 + 5)
    text = _text(at)
    assert "10 fixed by B, 5 broken by B" in text and "no significant difference" in text
    assert "Fixed by B (10)" in text and "Broken by B (5)" in text
    assert "Steps: where reasoning first goes wrong" in text
    steps = next(d.value for d in at.dataframe if "B − A (paired)" in d.value.columns)
    row = steps[steps["metric"] == "right for wrong reasons %"].iloc[0]
    assert row["A [95% CI]"].startswith("100.0") and row["B [95% CI]"].startswith("100.0")
    assert set(steps["metric"]) >= {"step accuracy %", "first error at step", "steps checkable %"}


def test_samples_page_steps_side_by_side(at):
    _page(at, "Samples")
    at.selectbox(key="quick").set_value("DPO vs Step-DPO on tiny-base · arith").run()
    at.selectbox(key="smp_filter").set_value("fixed by B").run()
    problems = at.selectbox(key="smp_problem")
    assert len(problems.options) == 10
    problems.set_value("arith/test/12").run()
    text = _text(at)
    assert text.index(":red[**wrong**]") < text.index(":green[**correct**]")  # A wrong (left), B right
    assert "Gold answer: " in text and "extracted: " in text
    question = next(p.question for p in arith.generate("test").problems if p.id == "arith/test/12")
    assert question.split(".")[0] in text.replace("&#46;", ".")  # the question, above the exact prompt
    assert "part ways at step 1" in text and "first divergent step" in text
    # B is right with a step that states nothing: its first wrong step is marked, by the locator that said so
    assert ":red[**first wrong step** (exact)]" in text and "steps by exact: first wrong step 1" in text
    at.toggle(key="smp_raw").set_value(True).run()
    assert not at.exception
    at.selectbox(key="smp_filter").set_value("broken by B").run()
    assert len(at.selectbox(key="smp_problem").options) == 5


def test_audit_page_lists_grader_disagreements(at):
    _page(at, "Audit")
    df = at.dataframe[0].value
    assert len(df) == 15 and set(df["other_grader"]) == {"grader 0.9.0"}
    assert df["ours"].all() and not df["other"].any()


def test_training_page(at):
    _page(at, "Training")
    assert not at.info
    assert {s.value for s in at.subheader} == {"loss", "reward margin", "reward accuracy"}


def test_missing_index_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("STEPDPO_DB", str(tmp_path / "none.duckdb"))
    t = AppTest.from_file(MAIN, default_timeout=60)
    t.run()
    assert not t.exception
    assert "stepdpo-bench ingest" in t.error[0].value


def test_deep_link_from_the_gate_report_opens_the_problem(app_results, monkeypatch):
    monkeypatch.setenv("STEPDPO_DB", str(app_results / "leaderboard.duckdb"))
    runs = {
        RunDir(d).manifest().model.label: d.name
        for d in app_results.iterdir()
        if (d / "run.json").exists() and RunDir(d).manifest().grader_version != "0.9.0"
    }
    t = AppTest.from_file(MAIN, default_timeout=60)
    t.query_params.update(
        {"page": "Samples", "a": runs["tiny-dpo"], "b": runs["tiny-step-dpo"], "problem": "arith/test/3"}
    )
    t.run()
    assert not t.exception, t.exception
    assert t.sidebar.radio(key="page").value == "Samples"
    assert t.selectbox(key="smp_problem").value == "arith/test/3"
    assert "part ways at step 1" in _text(t)


def test_leaderboard_page_shows_the_suite_in_paper_layout(tiny_ckpt, shared_data, tmp_path, monkeypatch):
    """Runs of the reasoning suite's sets: the page opens with one row per model, a column per set (each with its
    interval) and the macro average; sets the model has not run show as '-'."""
    from typer.testing import CliRunner

    from stepdpo_bench.cli import app

    out = tmp_path / "results"
    args = ["eval", "--model", str(tiny_ckpt), "--backend", "hf", "--tasks", "aime24,amc23", "--limit", "2"]
    res = CliRunner().invoke(app, [*args, "--data-dir", str(shared_data), "--max-tokens", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert CliRunner().invoke(app, ["ingest", str(out)]).exit_code == 0
    monkeypatch.setenv("STEPDPO_DB", str(out / "leaderboard.duckdb"))
    t = AppTest.from_file(MAIN, default_timeout=60)
    t.run()
    assert not t.exception, t.exception
    suite = t.dataframe[0].value
    assert list(suite.columns)[2:10] == [
        "aime24",
        "aime25",
        "amc23",
        "math500",
        "minerva_math",
        "olympiadbench",
        "college_math",
        "macro avg",
    ]
    row = suite.iloc[0]
    assert row["aime24"].startswith("0.0 [0.0–") and row["aime25"] == "-" and row["sets"] == "2/7 (subset runs)"
    assert "Reasoning suite" in _text(t)
    assert set(t.dataframe[1].value["task"]) == {"aime24", "amc23"}  # the ordinary board follows
