r"""A labelled set of (prediction, gold, task, label) pairs for the grader benchmark.

Built from the real gold answers in ``../shared/data`` by rewrites whose label is known by construction:
*equivalent* forms a model really writes (``\dfrac``, ``a/b``, ``$...$``, units, ``x =``, thousands separators,
terminating decimals, reordered solution lists, ``\left(``...) and *near misses* a model really makes (off by
one, sign, swapped tuple, flipped interval end, dropped root, reciprocal, x100).  Plus a hand-written block of
forms the rules above do not generate.  The set is deterministic (seeded), so figures compare across runs.
"""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path

from stepdpo_bench.grading import extract_gold

FRAC = re.compile(r"^(-?)\\frac\{(\d+)\}\{(\d+)\}$")
INT = re.compile(r"^-?\d+$")
PAIR = re.compile(r"^\\left\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\\right\)$|^\(([^,()]+),([^,()]+)\)$")
INTERVAL = re.compile(r"^([\[(])(.+),(.+)([\])])$")
SQRT = re.compile(r"\\sqrt\{(\d+)\}")


def _terminating(fr: Fraction) -> str | None:
    d = fr.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    s = f"{float(fr):.10f}".rstrip("0").rstrip(".")
    return s if Fraction(s) == fr else None


def _repeating(fr: Fraction) -> str | None:
    """``1/3`` -> ``0.\\overline{3}``, ``1/6`` -> ``0.1\\overline{6}`` (periods up to 6 digits)."""
    n, d = abs(fr.numerator), fr.denominator
    whole, rem = divmod(n, d)
    digits, seen = [], {}
    while rem and rem not in seen and len(digits) < 12:
        seen[rem] = len(digits)
        rem *= 10
        digits.append(str(rem // d))
        rem %= d
    if not rem or rem not in seen or len(digits) - seen[rem] > 6:
        return None
    start = seen[rem]
    body = "".join(digits[:start]) + "\\overline{" + "".join(digits[start:]) + "}"
    return ("-" if fr < 0 else "") + f"{whole}.{body}"


def _math_rewrites(g: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = [(f"${g}$", True)]
    if m := FRAC.match(g):
        sign, a, b = m.groups()
        fr = Fraction(int(a), int(b)) * (-1 if sign else 1)
        out += [(f"{sign}\\dfrac{{{a}}}{{{b}}}", True), (f"{sign}{a}/{b}", True)]
        if (dec := _terminating(fr)) is not None:
            out.append((dec, True))
        else:
            out.append((f"{float(fr):.4g}", False))  # grader 2.0: a rounded decimal approximates the exact gold
            out.append((f"{float(fr):.1g}", False))  # one significant digit: too coarse to be the answer
            if (rep := _repeating(fr)) is not None:
                out.append((rep, True))  # 0.\overline{3}: the exact value, written as a repeating decimal
        if a != b:
            out.append((f"{sign}\\frac{{{b}}}{{{a}}}", False))
        out.append((("" if sign else "-") + f"\\frac{{{a}}}{{{b}}}", False))
    elif INT.match(g):
        n = int(g)
        out += [(f"x = {n}", True), (f"{n}.0", True), (f"{n} \\text{{ units}}", True)]
        if abs(n) >= 1000:
            out.append((f"{n:,}", True))
        out.append((str(n + 1), False))
        if n != 0:
            out += [(str(-n), False), (str(n * 10), False)]
        if abs(n) >= 10:
            out.append((str(n)[:-1], False))
    elif m := PAIR.match(g):
        a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        a, b = a.strip(), b.strip()
        out += [(f"({a}, {b})", True), (f"\\left({a},{b}\\right)", True)]
        if a != b:
            out.append((f"({b}, {a})", False))
        out.append((f"{a}, {b}", False))  # missing brackets: not an ordered pair
    elif (m := INTERVAL.match(g)) and "\\cup" not in g:
        lo, a, b, hi = m.groups()
        out.append((f"\\left{lo}{a}, {b}\\right{hi}", True))
        if "\\infty" not in a and lo in "[(":
            out.append((("(" if lo == "[" else "[") + f"{a},{b}{hi}", False))
    if SQRT.search(g):
        # TeX takes one token after \sqrt: "\sqrt 7" is sqrt(7) but "\sqrt 19" is \sqrt{1}9, so 1 digit only
        m = SQRT.search(g)
        out.append((SQRT.sub(r"\\sqrt \1" if m and len(m.group(1)) == 1 else r"\\sqrt {\1}", g, count=1), True))
        out.append((SQRT.sub(r"\1", g, count=1), False))
    if "\\pi" in g and "2\\pi" not in g:
        out.append((g.replace("\\pi", "2\\pi", 1), False))
    if "\\frac" in g and not g.startswith("\\frac"):
        out.append((g.replace("\\frac", "\\dfrac"), True))
    if "^\\circ" in g:
        out.append((g.replace("^\\circ", "") + " degrees", True))
    return out


def _gsm8k_rewrites(g: str) -> list[tuple[str, bool]]:
    n = int(g)
    out = [(f"${n}", True), (f"{n:,}", True), (f"{n}.00", True), (f"{n} dollars", True)]
    out += [(str(n + 1), False), (str(n - 1), False), (f"{n / 100:g}", False)]
    if n:
        out.append((str(-n), False))
    return out


def _odyssey_rewrites(g: str) -> list[tuple[str, bool]]:
    if re.fullmatch(r"[A-E]", g):
        other = "ABCDE"[("ABCDE".index(g) + 1) % 5]
        return [(f"({g})", True), (f"\\text{{({g})}}", True), (other, False), (f"({other})", False)]
    return _math_rewrites(g)


HAND_WRITTEN = [
    # realistic model forms not produced by the rules above: (pred, gold, task, label)
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}", "math", True),
    (r"\sqrt{3}/2", r"\frac{\sqrt3}{2}", "math", True),
    (r"2\sqrt{2}", r"\sqrt{8}", "math", True),
    (r"\frac{2}{\sqrt{3}}", r"\frac{2\sqrt{3}}{3}", "math", True),
    (r"x^2 + 2x + 1", r"(x+1)^2", "math", True),
    (r"3 + 2i", r"2i + 3", "math", True),
    (r"y = 2x + 1", r"2x - y + 1 = 0", "math", True),
    (r"\{2, 1\}", r"\{1, 2\}", "math", True),
    (r"x = 1 \text{ or } x = 2", "1, 2", "math", True),
    (r"(-\infty, 0) \cup (1, \infty)", r"(1,\infty)\cup(-\infty,0)", "math", True),
    (r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}", r"\begin{pmatrix}1\\-2\end{pmatrix}", "math", True),
    (r"2.5", r"\frac{5}{2}", "math", True),
    (r"2\frac{1}{2}", r"\frac52", "math", True),
    (r"50\%", "50", "math", True),
    (r"\$1,250", "1250", "math", True),
    (r"1 - \frac{1}{e}", r"\frac{e-1}{e}", "math", True),
    (r"\frac{\pi}{4}", r"\frac14\pi", "math", True),
    (r"1.5 \times 10^{3}", "1500", "math", True),
    (r"\text{(B)}", "B", "math", True),
    (r"10_2", r"2_{10}", "math", True),
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}", "math", False),
    (r"1 + \frac{1}{e}", r"1 - \frac{1}{e}", "math", False),
    (r"4t", "4", "math", False),
    (r"2516_{10}", r"2516_{8}", "math", False),
    (r"12", "1,2", "math", False),
    (r"(2, 1)", "(1, 2)", "math", False),
    (r"[2, 5)", r"(2, 5]", "math", False),
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}", "math", False),
    (r"y = 2x - 1", r"y = 2x + 1", "math", False),
    (r"3 - 2i", r"3 + 2i", "math", False),
    (r"0.33", r"\frac{1}{3}", "math", False),
    (r"0.333", r"\frac{1}{3}", "math", False),  # grader 2.0: an approximation of an exact value
    (r"3.1416", r"\pi", "math", False),
    (r"0.\overline{3}", r"\frac{1}{3}", "math", True),
    (r"2^{200}", r"2^{200}+1", "math", False),
    (r"0.5\pi", r"\frac{\pi}{2}", "math", True),
    (r"32, 349", "32349", "math", False),
    (r"x > 4", r"(4, \infty)", "math", True),
    (r"2 \pm \sqrt{7}", r"2+\sqrt{7}, 2-\sqrt{7}", "math", True),
    (r"12:00", "1:00", "math", False),
    (r"\frac{1}{0}", r"\frac{2}{0}", "math", False),
    (r"5000", "50", "math", False),
    (r"0.5", "50", "math", False),
    (r"x^2 - 1", r"(x-1)^2", "math", False),
    (r"\{1, 2\}", r"\{1, 2, 3\}", "math", False),
    (r"(1, 2)", r"\{1, 2\}", "math", False),
    (r"x < 3", r"x \le 3", "math", False),
    (r"\pi", r"2\pi", "math", False),
    (r"3.15", r"\pi", "math", False),
    (r"1, 2", "(1, 2)", "math", False),
]


def build_pairs(data_dir: Path, seed: int = 0, per_task: int = 160) -> list[dict]:
    """Deterministic labelled pairs from MATH-500, GSM8K and Odyssey golds plus the hand-written block."""
    rng = random.Random(seed)
    pairs: list[dict] = []
    math500 = [json.loads(x) for x in (data_dir / "math500" / "test.jsonl").open(encoding="utf-8")]
    for row in rng.sample(math500, min(per_task, len(math500))):
        g = row["answer"]
        pairs += [
            {"pred": p, "gold": g, "task": "math", "label": lab, "source": row["unique_id"]}
            for p, lab in _math_rewrites(g)
        ]
    gsm = [json.loads(x) for x in (data_dir / "gsm8k" / "test.jsonl").open(encoding="utf-8")]
    for i, row in sorted(rng.sample(list(enumerate(gsm)), per_task // 2)):
        g = extract_gold(row["answer"], "gsm8k")
        pairs += [
            {"pred": p, "gold": g, "task": "gsm8k", "label": lab, "source": f"gsm8k/{i}"}
            for p, lab in _gsm8k_rewrites(g)
        ]
    ody_path = data_dir / "odyssey_math" / "final-odyssey-math-with-levels.jsonl"
    ody = [(k, v) for line in ody_path.open(encoding="utf-8") for k, v in json.loads(line).items()]
    for key, row in rng.sample(ody, per_task // 2):
        g = extract_gold(row["answer"], "odyssey")
        pairs += [
            {"pred": p, "gold": g, "task": "odyssey", "label": lab, "source": key} for p, lab in _odyssey_rewrites(g)
        ]
    pairs += [{"pred": p, "gold": g, "task": t, "label": lab, "source": "hand"} for p, g, t, lab in HAND_WRITTEN]
    return pairs
