"""The reasoning suite's six sets, loaded from their real files in shared/data: counts, ids, each set's gold read
by its own rules, the quirks repaired, the breakdown fields kept, and bad records refused naming file:line."""

from __future__ import annotations

import collections
import json

import pytest

from stepdpo_bench.grading import grade_batch, is_equivalent
from stepdpo_bench.tasks import REASONING_SETS, TaskError, expand_tasks, load_task
from stepdpo_bench.tasks.base import sha256_file
from stepdpo_bench.tasks.reasoning import repair_escapes, unit_after_box

COUNTS = {"aime24": 30, "aime25": 30, "amc23": 40, "minerva_math": 272, "olympiadbench": 675, "college_math": 2818}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_each_set_loads_from_its_file(shared_data, name):
    t = load_task(name, shared_data)
    assert len(t) == COUNTS[name]
    assert len({p.id for p in t.problems}) == len(t)  # ids unique and stable (the source's own where it has one)
    assert all(p.id.startswith(name + "/") for p in t.problems)
    assert all(p.question.strip() and p.gold.strip() for p in t.problems)
    assert t.data_sha256 == sha256_file(shared_data / name / "test.jsonl")
    assert t.convention == "math"


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_gold_grades_correct_against_itself(shared_data, name):
    """The gold as the loader reads it, boxed by a model, is graded correct: the loader and the grader agree on
    what each gold means (a tuple list whose items look like thousands groupings once failed this)."""
    t = load_task(name, shared_data)
    grades = grade_batch(
        [f"So the answer is $\\boxed{{{p.gold}}}$." for p in t.problems],
        [p.gold for p in t.problems],
        "math",
        questions=[p.question for p in t.problems],
    )
    bad = [(p.id, p.gold, g.reason) for p, g in zip(t.problems, grades, strict=True) if not g.correct]
    assert not bad, bad[:5]


def test_aime_golds_are_integers_and_contests_known(shared_data):
    a24, a25 = load_task("aime24", shared_data), load_task("aime25", shared_data)
    for t in (a24, a25):
        assert all(p.gold.isdigit() and 0 <= int(p.gold) <= 999 and str(int(p.gold)) == p.gold for p in t.problems)
        assert collections.Counter(p.subject for p in t.problems) == {"AIME I": 15, "AIME II": 15}
    assert a24.problems[0].id == "aime24/60" and a24.problems[0].gold == "204"
    # aime25 has no url: its order is I/1..15 then II/1..15, checked at both ends of both contests
    assert [a25.problems[i].gold for i in (0, 14, 15, 29)] == ["70", "735", "468", "240"]
    assert bool(is_equivalent("033", "33")) and not is_equivalent("34", "33")


def test_aime25_escape_casualties_repaired_and_recorded(shared_data):
    raw = [json.loads(line) for line in (shared_data / "aime25/test.jsonl").open()]
    assert "\f" in raw[18]["problem"] and "\t" in raw[19]["problem"]  # the file stays as it is
    t = load_task("aime25", shared_data)
    assert not any(ch in p.question for p in t.problems for ch in "\f\t")
    assert "\\frac{\\log_k" in t.problems[18].question and "\\triangle DEF" in t.problems[19].question
    assert sorted(t.meta["repaired"]) == ["aime25/18", "aime25/19", "aime25/27"]
    assert len(t.meta["repaired"]["aime25/18"]) == 5
    assert all(
        p.question == r["problem"]
        for p, r in zip(t.problems, raw, strict=True)
        if "\f" not in r["problem"] and "\t" not in r["problem"]
    )


def test_repair_leaves_other_text_alone():
    assert repair_escapes("a\tb") == ("a\tb", [])  # a tab before a word that is no command
    assert repair_escapes("\frac12 and \times") == (
        "\\frac12 and \\times",
        ["'\\x0c'rac -> \\frac", "'\\t'imes -> \\times"],
    )


def test_amc_float_golds(shared_data):
    t = load_task("amc23", shared_data)
    raw = [json.loads(line) for line in (shared_data / "amc23/test.jsonl").open()]
    assert isinstance(raw[0]["answer"], float) and t.problems[0].gold == "27"
    assert all(p.gold == str(int(r["answer"])) for p, r in zip(t.problems, raw, strict=True))
    assert collections.Counter(p.subject for p in t.problems) == {"AMC 12A": 22, "AMC 12B": 18}
    assert bool(is_equivalent("27", t.problems[0].gold)) and bool(is_equivalent("27.0", t.problems[0].gold))


def test_minerva_box_and_unit_after_it(shared_data):
    t = load_task("minerva_math", shared_data)
    first = t.problems[0]
    assert first.gold == "1.6 \\mathrm{~cm}"  # \boxed{1.6} \mathrm{~cm}: the unit outside the box is kept
    assert bool(is_equivalent("1.6", first.gold)) and bool(is_equivalent("1.6 \\text{ cm}", first.gold))
    assert not is_equivalent("1.6 \\text{ m}", first.gold)
    assert t.problems[1].gold == "4.5e33"  # ergs s^-1 is no unit the grader knows: the value alone
    assert unit_after_box("so \\boxed{41.8}^{\\circ}") is None
    assert len({p.subject for p in t.problems}) >= 5  # the OCW course is the subject
    sig = next(p for p in t.problems if "significant figures" in p.question and p.gold[:1].isdigit())
    v = is_equivalent(sig.gold.split()[0], sig.gold, question=sig.question)
    assert v, v.reason


def test_olympiadbench_lists_units_and_types(shared_data):
    t = load_task("olympiadbench", shared_data)
    by_id = {p.id.split("/")[1]: p for p in t.problems}
    assert collections.Counter(p.level for p in t.problems) == {
        "Numerical": 572,
        "Expression": 64,
        "Tuple": 33,
        "Interval": 6,
    }
    assert collections.Counter(p.subject for p in t.problems)["Algebra"] == 264
    multi = by_id["1664"]  # ["$69$,$84$"], is_multiple_answer: every answer, any order
    assert multi.gold == "69, 84"
    assert bool(is_equivalent("84, 69", multi.gold)) and not is_equivalent("69", multi.gold)
    tuples = by_id["1618"]
    assert bool(is_equivalent("(4,5,7), (1,8,19), (2,7,13)", tuples.gold))
    assert not is_equivalent("(1,8,19), (2,7,13)", tuples.gold)
    speed = by_id["2334"] if by_id["2334"].gold.endswith("km") else None
    assert speed is not None and bool(is_equivalent("\\frac{41}{12}", speed.gold))
    assert bool(is_equivalent("\\frac{41}{12} \\text{ km}", speed.gold)) and not is_equivalent(
        "\\frac{41}{12} m", speed.gold
    )
    kmh = next(p for p in t.problems if p.gold.endswith("km/h"))
    assert bool(is_equivalent("\\frac{600}{7}", kmh.gold)) and not is_equivalent(
        "\\frac{600}{7} \\text{ m/s}", kmh.gold
    )


def test_college_math_words_and_topics(shared_data):
    t = load_task("college_math", shared_data)
    topics = collections.Counter(p.subject for p in t.problems)
    assert topics["algebra"] == 1000 and topics["linear_algebra"] == 260 and len(topics) == 7
    words = next(p for p in t.problems if p.gold.lower() == "all real numbers")
    assert bool(is_equivalent("All real numbers", words.gold))


def test_suite_name_expands_in_paper_order():
    assert expand_tasks(["reasoning"]) == list(REASONING_SETS)
    assert expand_tasks(["gsm8k", "reasoning", "aime24"])[:2] == ["gsm8k", "aime24"]
    assert len(expand_tasks(["reasoning", "math500"])) == 7


@pytest.mark.parametrize(
    ("name", "record", "message"),
    [
        ("aime24", {"id": 1, "problem": "p", "answer": "12.5"}, "field 'answer' should be an AIME answer"),
        ("amc23", {"id": 1, "problem": "p"}, "missing field 'answer'"),
        ("olympiadbench", {"id": 1, "question": "q", "final_answer": []}, "field 'final_answer'"),
        ("minerva_math", {"idx": "0", "problem": "p", "solution": "no box"}, "no \\boxed{} gold"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, name, record, message):
    (tmp_path / name).mkdir()
    good = {"aime24": {"id": 0, "problem": "p", "answer": "7"}}.get(name)
    lines = ([json.dumps(good)] if good else []) + [json.dumps(record)]
    (tmp_path / name / "test.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TaskError) as exc:
        load_task(name, tmp_path)
    text = str(exc.value)
    assert message in text and f"{name}/test.jsonl:{len(lines)}" in text and "\n" not in text


def test_no_hub_copy_says_where_the_file_is(monkeypatch):
    monkeypatch.delenv("STEPDPO_DATA_DIR", raising=False)
    with pytest.raises(TaskError, match=r"Qwen2\.5-Math"):
        load_task("college_math")


def test_hub_copies_load_through_the_same_parsers(monkeypatch):
    """The Hub path, offline: ``datasets.load_dataset`` answers with records shaped like each Hub copy (their field
    names, AIME 2025's two configs), and the same parsers read them."""
    datasets = pytest.importorskip("datasets")
    calls = []
    hub = {
        ("opencompass/AIME2025", "AIME2025-I"): [{"question": "Find $x$.", "answer": "70"}],
        ("opencompass/AIME2025", "AIME2025-II"): [{"question": "Find $y$.", "answer": "468"}],
        ("math-ai/minervamath", None): [{"question": "How far?", "answer": "1.6"}],
        ("HuggingFaceH4/aime_2024", None): [
            {
                "id": 60,
                "problem": "p",
                "solution": "s",
                "answer": "204",
                "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1",
            }
        ],
    }

    def fake(repo, config=None, split=None):
        calls.append((repo, config, split))
        return datasets.Dataset.from_list(hub[(repo, config)])

    monkeypatch.delenv("STEPDPO_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake)
    a25 = load_task("aime25")
    assert [(p.gold, p.subject) for p in a25.problems] == [("70", "AIME I"), ("468", "AIME II")]
    assert a25.source == "hf://opencompass/AIME2025"
    assert load_task("minerva_math").problems[0].gold == "1.6"
    a24 = load_task("aime24")
    assert a24.problems[0].id == "aime24/60" and a24.problems[0].subject == "AIME I"
    assert ("HuggingFaceH4/aime_2024", None, "train") in calls  # published as one train split
