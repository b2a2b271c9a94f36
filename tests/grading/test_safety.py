"""Model text is untrusted: nothing in it runs, and no input can stall the caller past the time limit."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

import stepdpo_bench
from stepdpo_bench.grading import GraderPool, extract_answer, is_equivalent, is_equivalent_batch


def _payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"__import__('os').system('touch {m}')",
        f"eval(\"open('{m}', 'w')\")",
        f"exec(\"open('{m}', 'w')\")",
        f"(lambda: __import__('pathlib').Path('{m}').touch())()",
        f"\\boxed{{__import__('os').system('touch {m}')}}",
        f"().__class__.__bases__[0].__subclasses__()[0]('{m}')",
        f"\\text{{__import__('os').system('touch {m}')}}",
        f"x + __import__('os').system('touch {m}')",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('touch {m}')",
        f"\\frac{{__import__('os').system('touch {m}')}}{{2}}",
        f"(__import__('os').system('touch {m}'), 1)",
        f"\\{{__import__('subprocess').call(['touch', '{m}'])\\}}",
    ]


def test_injection_payloads_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    payloads = _payloads(marker)
    pool = GraderPool(size=2)  # fresh workers, started inside the scratch directory
    try:
        for text in payloads:
            for task in ("math", "gsm8k", "odyssey", "arith"):
                ans = extract_answer(text, task)
                if ans is not None:
                    assert not is_equivalent(ans, "-12345", task)
        verdicts = is_equivalent_batch([(p, "x") for p in payloads] + [("x", p) for p in payloads], pool=pool)
        assert not any(verdicts)
    finally:
        pool.close()
    assert not marker.exists()
    assert not (tmp_path / "pwned").exists()


FORBIDDEN_CALLS = {"eval", "exec", "sympify", "parse_expr", "compile", "__import__"}


def test_no_code_execution_calls_in_the_package():
    """Static guard: none of our modules calls eval/exec/sympify/parse_expr (dependencies are vetted in docs)."""
    root = Path(stepdpo_bench.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                # builtins by name (re.compile is fine); sympy's string parsers by any spelling
                hit = (isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS) or (
                    isinstance(f, ast.Attribute) and f.attr in {"sympify", "parse_expr"}  # not torch .eval()
                )
                if hit:
                    name = f.id if isinstance(f, ast.Name) else f.attr  # type: ignore[union-attr]
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert offenders == []


ADVERSARIAL = [
    "10^{10^{10^{10}}}",
    "9!!!!!!!!",
    "2^{2^{2^{2^{2^{2^{2}}}}}}",
    "(10^{10^{8}})!",
    "10^{10^{9}}+1",
    "(x+1)^{100000}",
    "x^{10^{12}}-1",
    "1+" * 4000 + "1",
    "{" * 3000 + "1" + "}" * 3000,
    "(" * 3000 + "1" + ")" * 3000,
    r"\frac{" * 500 + "1",
    r"\sqrt{" * 800 + "2" + "}" * 800,
    r"\frac{",
    r"\left(",
    r"\begin{pmatrix} 1 & 2",
    "1/0",
    "0/0",
    r"\infty-\infty",
    "\x00\x01\x02",
    "½ ∞ ∑ 𝔸",
    "a" * 10000,
    r"\begin{pmatrix}" + r"1&" * 2000 + r"1\end{pmatrix}",
    ",".join(["1"] * 5000),
    r"\boxed{" * 200,
    "9" * 100000,
]


def test_adversarial_inputs_are_bounded():
    pool = GraderPool(size=2)
    limit = 2.0
    try:
        t0 = time.monotonic()
        pairs = [(a, g) for a in ADVERSARIAL for g in ("5", "10^{10^{10^{10}}}")]
        verdicts = is_equivalent_batch(pairs, "math", timeout=limit, pool=pool)
        wall = time.monotonic() - t0
    finally:
        pool.close()
    for (a, g), v in zip(pairs, verdicts, strict=True):
        assert v.reason, (a[:40], g)
        if a != g:
            assert not v, (a[:40], g, v.reason)
    # each pair gets at most `limit` seconds on one of two workers, plus worker restarts
    assert wall < len(pairs) * limit


def test_extraction_is_fast_on_huge_completions():
    text = ("Step 1: 1 + 1 = 2\n" * 20000) + r"\boxed{" * 5000
    t0 = time.monotonic()
    extract_answer(text, "math")
    extract_answer(text, "gsm8k")
    assert time.monotonic() - t0 < 5


def test_hang_in_a_thread_does_not_stall_the_caller():
    """signal.alarm only works in the main thread; our limit must hold in any thread."""
    out = {}

    def run():  # not recognisable as explosive from its text, yet sympy would work on it for minutes
        out["v"] = is_equivalent(r"\sum_{k=1}^{1000} k^{k^{2}}", "3", timeout=1.0)

    th = threading.Thread(target=run)
    th.start()
    th.join(timeout=60)
    assert not th.is_alive()
    assert not out["v"] and "timeout" in out["v"].reason


@pytest.mark.parametrize("bomb", ["10^{10^{10}}", "(10^{9})!"])
def test_memory_bombs_fail_cleanly(bomb):
    v = is_equivalent(bomb, "1", timeout=3.0)
    assert not v
