"""Every gold answer of the real evaluation sets must equal itself, and MATH-500 answers their solution's box."""

from __future__ import annotations

import json

from stepdpo_bench.grading import extract_gold, is_equivalent_batch


def _jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_math500_answer_is_last_box_of_solution(shared_data):
    rows = _jsonl(shared_data / "math500" / "test.jsonl")
    assert len(rows) == 500
    pairs = [(r["answer"], extract_gold(r["solution"], "math")) for r in rows]
    verdicts = is_equivalent_batch(pairs, "math")
    bad = [(p, g, v.reason) for (p, g), v in zip(pairs, verdicts, strict=True) if not v]
    assert bad == []
    assert all(is_equivalent_batch([(r["answer"], r["answer"]) for r in rows], "math"))


def test_math_full_golds_equal_themselves(shared_data):
    rows = _jsonl(shared_data / "math" / "test.jsonl")
    golds = [extract_gold(r["solution"], "math") for r in rows]
    assert all(golds)
    assert all(is_equivalent_batch([(g, g) for g in golds], "math"))


def test_gsm8k_golds(shared_data):
    rows = _jsonl(shared_data / "gsm8k" / "test.jsonl")
    stepdpo = _jsonl(shared_data / "gsm8k" / "GSM8K_test_data.jsonl")
    golds = [extract_gold(r["answer"], "gsm8k") for r in rows]
    assert all(g.lstrip("-").isdigit() for g in golds)
    assert golds == [extract_gold(r["answer"], "gsm8k") for r in stepdpo]
    with_commas = [r["answer"].rsplit("####", 1)[1].strip() for r in rows]
    assert all(is_equivalent_batch(list(zip(with_commas, golds, strict=True)), "gsm8k"))


def test_odyssey_golds(shared_data):
    records = _jsonl(shared_data / "odyssey_math" / "final-odyssey-math-with-levels.jsonl")
    rows = [next(iter(r.values())) for r in records]
    golds = [extract_gold(r["answer"], "odyssey") for r in rows]
    assert len(golds) == 387 and all(golds)
    assert not any(g.endswith(("\\noindent", "\\\\")) for g in golds)
    assert all(is_equivalent_batch([(g, g) for g in golds], "odyssey"))
