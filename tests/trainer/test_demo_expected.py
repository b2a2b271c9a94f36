"""The demo's documented numbers: one source (docs/demo_expected.json) that README and docs/demo.md quote, and the
check CI runs on a fresh machine's demo (bench/demo_check.py) passes inside the tolerance and fails outside it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = json.loads((ROOT / "docs" / "demo_expected.json").read_text())


def _check():
    spec = importlib.util.spec_from_file_location("demo_check", ROOT / "bench" / "demo_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.check


def test_readme_and_docs_quote_the_expected_numbers():
    tol = f"±{EXPECTED['tolerance_pts']:g}"
    for doc in ("README.md", "docs/demo.md"):
        text = (ROOT / doc).read_text()
        assert tol in text, f"{doc} does not state the tolerance {tol}"
        for run, value in EXPECTED["accuracy"].items():
            assert f"{value:.1f}" in text, f"{doc} does not quote {run} = {value:.1f}"


def test_check_passes_inside_and_fails_outside_the_tolerance():
    check = _check()
    tol = EXPECTED["tolerance_pts"]
    at = {k: v / 100 for k, v in EXPECTED["accuracy"].items()}
    assert check({"accuracy": at}, EXPECTED)[1]
    edge = {k: (v + tol) / 100 for k, v in EXPECTED["accuracy"].items()}
    assert check({"accuracy": edge}, EXPECTED)[1]
    first = next(iter(at))
    assert not check({"accuracy": {**at, first: at[first] + (tol + 0.2) / 100}}, EXPECTED)[1]
    assert not check({"accuracy": {k: v for k, v in at.items() if k != first}}, EXPECTED)[1]  # a number missing
