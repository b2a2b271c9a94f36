r"""Three graders on the reasoning suite's rules: ours, Qwen2.5-Math's ``math_equal`` and Math-Verify, side by side.

    python bench/reasoning.py --qwen-math DIR --peer-python PY [--data-dir ../shared/data] [--per-set 80] [--show 4]

Pairs are built from each set's real golds (aime24, aime25, amc23, minerva_math, olympiadbench, college_math),
labelled by construction: the gold itself, alternative forms (``033`` for 33, ``27.0``, ``a/b`` for
``\frac{a}{b}``, a list in another order, the value without its unit, a finer decimal where the problem names
the precision), and near misses (off by one, a swapped fraction or ordered pair, a list missing an item, another
unit, a decimal off in its last digit).  Each grader is called the way its own pipeline calls it:

- **ours**: the task loader's gold, ``grade_batch`` on "The answer is $\boxed{PRED}$." with the question;
- **Qwen2.5-Math**: in its own interpreter (``--peer-python``: sympy 1.12, antlr 4.11, its vendored
  latex2sympy), ``parse_ground_truth(record, set)`` for the gold, ``extract_answer`` on the same completion,
  ``math_equal(pred, gt, timeout=True)``, as ``evaluation/evaluate.py`` does;
- **Math-Verify** (this interpreter): ``verify(parse(gold), parse(completion))`` with Qwen's gold string in ``$..$``.

Also renders our suite prompts beside Qwen2.5-Math's own templates (``utils.PROMPT_TEMPLATES`` through its
``construct_prompt``, zero-shot) and says whether each string is identical.

Get the peer with the search tool's ``fetch`` (github:QwenLM/Qwen2.5-Math); copy ``evaluation/`` out of the
snapshot (``git show HEAD:path`` per file), make a venv with ``sympy==1.12 antlr4-python3-runtime==4.11.1 regex
word2number`` and ``pip install -e evaluation/latex2sympy``.  None of the peer's code is in this repository.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stepdpo_bench.grading import grade_batch
from stepdpo_bench.tasks import load_task
from stepdpo_bench.tasks.reasoning import unit_after_box

SETS = ("aime24", "aime25", "amc23", "minerva_math", "olympiadbench", "college_math")
OTHER_UNIT = {"km": "m", "cm": "m", "m": "cm", "minute": "s", "minutes": "s", "min": "s", "km/h": "m/s"}

# The driver runs in the peer's interpreter, from the peer's folder: it only calls the peer's public functions.
DRIVER = r"""
import json, sys
sys.path.insert(0, ".")
from parser import extract_answer, parse_ground_truth
from grader import math_equal
from utils import PROMPT_TEMPLATES, construct_prompt
jobs = json.load(open(sys.argv[1]))
out = []
for j in jobs["pairs"]:
    name = j["set"] if j["set"] != "aime25" else "aime24"
    _, gt = parse_ground_truth(j["record"], name)
    pred = extract_answer(j["completion"], name)
    out.append({"gt": str(gt), "pred": pred, "equal": bool(math_equal(pred, gt, timeout=True))})
class A: pass
prompts = {}
for name in jobs["prompt_types"]:
    a = A(); a.prompt_type = name; a.num_shots = 0; a.adapt_few_shot = False
    prompts[name] = [construct_prompt({"question": q, "gt_ans": "1"}, "math", a) for q in jobs["questions"]]
from evaluate import evaluate
from utils import save_jsonl
KEEP = ["level", "type", "unit", "solution_type", "choices", "solution", "ques_type", "ans_type", "answer_type"]
files = {}
for name, problems in jobs["qwen_output"].items():
    peer = name if name != "aime25" else "aime24"
    samples = []
    for p in problems:
        gt_cot, gt = parse_ground_truth(p["record"], peer)
        s = {"idx": p["idx"], "question": p["question"], "gt_cot": gt_cot, "gt": gt}
        s.update({k: p["record"][k] for k in KEEP if k in p["record"]})
        s.update(code=p["completions"], pred=[extract_answer(c, peer) for c in p["completions"]],
                 report=[None] * len(p["completions"]))
        samples.append(s)
    samples, _ = evaluate(peer, "qwen25-math-cot", samples=samples, execute=True)
    path = f"{jobs['qwen_dir']}/{name}/test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl"
    save_jsonl(samples, path)
    files[name] = path
json.dump({"pairs": out, "prompts": prompts, "files": files}, open(sys.argv[2], "w"))
"""

# our prompt name -> Qwen2.5-Math's prompt type with the same string (deepseek-r1 is a chat prompt: its user turn
# is the "mathstral" text, and no system prompt)
PROMPT_PEERS = {"qwen25-math-cot": "qwen25-math-cot", "boxed": "mathstral", "deepseek-r1": "mathstral"}


@dataclass
class Pair:
    set: str
    kind: str
    pid: str
    pred: str
    gold: str
    question: str
    label: bool
    record: dict


def _value_and_unit(p, rec, name):
    if name == "olympiadbench" and rec.get("unit") and p.gold.endswith(str(rec["unit"]).strip("$")):
        unit = str(rec["unit"]).strip("$")
        return p.gold[: -len(unit)].strip(), unit
    if name == "minerva_math" and rec.get("solution"):
        unit = unit_after_box(rec["solution"])
        if unit and p.gold.endswith(unit):
            return p.gold[: -len(unit)].strip(), unit
    return p.gold, None


_FRAC = re.compile(r"^(-?)\\frac\{(\d+)\}\{(\d+)\}$")
_DEC = re.compile(r"^-?\d+\.\d+$")
_TUPLE = re.compile(r"^\((-?\d+),\s*(-?\d+)\)$")


def _top_level_items(text: str) -> list[str]:
    """``(1,2), (3,4)`` -> [``(1,2)``, ``(3,4)``]: commas outside brackets and braces."""
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*items, cur.strip()] if cur.strip() else items


def variants(p, rec, name) -> list[tuple[str, str, bool]]:
    """(kind, prediction, label) for one gold: the forms a right answer takes and the near misses of a wrong one."""
    value, unit = _value_and_unit(p, rec, name)
    out = [("same", value, True)]
    if unit:
        out.append(
            ("with-unit", f"{value} \\text{{ {unit.strip('^{}')} }}" if "\\" not in unit else value + unit, True)
        )
        other = OTHER_UNIT.get(unit.strip().replace("\\mathrm{~", "").replace("}", "").strip())
        if other:
            out.append(("other-unit", f"{value} \\text{{ {other}}}", False))
    if re.fullmatch(r"-?\d+", value):
        v = int(value)
        if name.startswith("aime") and 0 <= v < 100:
            out.append(("leading-zeros", f"{v:03d}", True))
        out += [("as-decimal", f"{v}.0", True), ("off-by-one", str(v + 1), False)]
    if m := _FRAC.match(value):
        sign, a, b = m.groups()
        out.append(("slash-fraction", f"{sign}{a}/{b}", True))
        if a != b:
            out.append(("swapped-fraction", f"{sign}\\frac{{{b}}}{{{a}}}", False))
    if _DEC.match(value):
        last = int(value[-1])
        out.append(("last-digit-off", value[:-1] + str((last + 1) % 10), False))
        if "significant figure" in p.question:
            out.append(("finer-decimal", value + "1", True))
    if m := _TUPLE.match(value):
        a, b = m.groups()
        if a != b:
            out.append(("swapped-pair", f"({b}, {a})", False))
    items = _top_level_items(value) if name == "olympiadbench" and rec.get("is_multiple_answer") else []
    if len(items) > 1:
        out.append(("reordered-list", ", ".join(reversed(items)), True))
        out.append(("missing-item", ", ".join(items[:-1]), False))
    if value.lower() in ("all real numbers", "no solution"):
        out.append(("words-case", value.title(), True))
        other = "no solution" if value.lower() == "all real numbers" else "all real numbers"
        out.append(("other-words", other, False))
    return out


def build_pairs(data_dir: Path, per_set: int) -> list[Pair]:
    pairs = []
    for name in SETS:
        task = load_task(name, data_dir)
        raw = [json.loads(line) for line in (data_dir / name / "test.jsonl").open() if line.strip()]
        step = max(1, len(task) // per_set)
        for i in range(0, len(task), step)[:per_set]:
            p, rec = task.problems[i], raw[i]
            for kind, pred, label in variants(p, rec, name):
                pairs.append(Pair(name, kind, p.id, pred, p.gold, p.question, label, {**rec, "_idx": i}))
    return pairs


def completion(pred: str) -> str:
    return f"The answer is $\\boxed{{{pred}}}$."


IMPORT_SETS = ("aime24", "minerva_math", "olympiadbench")


def qwen_output(pairs: list[Pair]) -> dict[str, list[dict]]:
    """Per set, one problem record per gold with every variant as one of its completions: the peer's evaluation
    grades them and writes its own output file, which ``import qwen-math`` then reads."""
    by: dict[str, dict[str, dict]] = defaultdict(dict)
    for q in pairs:
        if q.set not in IMPORT_SETS:
            continue
        entry = by[q.set].setdefault(
            q.pid, {"record": q.record, "question": q.question, "completions": [], "idx": int(q.record.get("_idx", 0))}
        )
        entry["completions"].append(completion(q.pred))
    return {name: list(v.values()) for name, v in by.items()}


def run_qwen(pairs: list[Pair], qwen_dir: Path, python: str, questions: list[str], out_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        jobs, result, driver = Path(tmp) / "jobs.json", Path(tmp) / "out.json", Path(tmp) / "driver.py"
        payload = {
            "pairs": [{"set": q.set, "record": q.record, "completion": completion(q.pred)} for q in pairs],
            "prompt_types": sorted(set(PROMPT_PEERS.values())),
            "questions": questions,
            "qwen_output": qwen_output(pairs),
            "qwen_dir": str(out_dir),
        }
        jobs.write_text(json.dumps(payload))
        driver.write_text(DRIVER)
        proc = subprocess.run(
            [python, str(driver), str(jobs), str(result)], cwd=qwen_dir / "evaluation", capture_output=True, text=True
        )
        if proc.returncode:
            sys.exit(f"the Qwen2.5-Math driver failed:\n{proc.stderr[-2000:]}")
        return json.loads(result.read_text())


def run_math_verify(pairs: list[Pair], golds: list[str]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for q, g in zip(pairs, golds, strict=True):
        try:
            out.append(bool(verify(parse(f"${g}$"), parse(completion(q.pred)))))
        except Exception:  # the peer raising on an input is its "not equal"
            out.append(False)
    return out


def check_prompts(peer_prompts: dict[str, list[str]], questions: list[str]) -> list[tuple[str, str, bool]]:
    from stepdpo_bench.prompts import get_template

    rows = []
    for ours, theirs in PROMPT_PEERS.items():
        t = get_template(ours)  # a chat prompt's text is its user turn; the chat template itself is the model's
        mine = [t.template.format(question=q) for q in questions]
        rows.append((ours, theirs, mine == peer_prompts[theirs]))
    return rows


def check_import(files: dict[str, str], pairs: list[Pair], data_dir: Path, work: Path) -> None:
    from stepdpo_bench.importers import import_qwen_math

    labels = {(q.pid, completion(q.pred)): q.label for q in pairs}
    for name, path in files.items():
        run = import_qwen_math(Path(path), work / "runs", name, "peer-file", data_dir)
        rows = run.read_samples()
        lab = [labels[(r["problem_id"], r["completion"])] for r in rows]
        ours = sum(r["correct"] == x for r, x in zip(rows, lab, strict=True))
        theirs = sum(r["other_correct"] == x for r, x in zip(rows, lab, strict=True))
        differ = sum(r["correct"] != r["other_correct"] for r in rows)
        print(
            f"  {name:<14} {len(rows)} samples of {run.manifest().task.n_problems} problems: ours right on {ours}, "
            f"theirs (their score field) on {theirs}, {differ} verdicts differ (the Audit page lists them)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--qwen-math", type=Path, required=True, help="a copy of QwenLM/Qwen2.5-Math (with evaluation/)")
    ap.add_argument("--peer-python", required=True, help="the interpreter of the peer's venv")
    ap.add_argument("--per-set", type=int, default=80)
    ap.add_argument("--show", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="write every disagreement here (jsonl)")
    args = ap.parse_args()

    pairs = build_pairs(args.data_dir, args.per_set)
    questions = [q.question for q in pairs[:: max(1, len(pairs) // 12)]]
    t0 = time.perf_counter()
    ours = [
        g.correct
        for g in grade_batch(
            [completion(q.pred) for q in pairs], [q.gold for q in pairs], "math", questions=[q.question for q in pairs]
        )
    ]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="qwen-output-"))
    peer = run_qwen(pairs, args.qwen_math, args.peer_python, questions, work)
    t_qwen = time.perf_counter() - t0
    qwen = [r["equal"] for r in peer["pairs"]]
    t0 = time.perf_counter()
    mv = run_math_verify(pairs, [r["gt"] for r in peer["pairs"]])
    t_mv = time.perf_counter() - t0

    graders = {"ours": ours, "qwen2.5-math": qwen, "math-verify": mv}
    print(f"{'set':<14} {'pairs':>5} | " + " | ".join(f"{g:>12} acc  FP  FN" for g in graders) + " | all agree")
    by_set: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(pairs):
        by_set[q.set].append(i)
    for name in (*SETS, "all"):
        idx = by_set[name] if name != "all" else list(range(len(pairs)))
        cells = []
        for verdicts in graders.values():
            acc = sum(verdicts[i] == pairs[i].label for i in idx) / len(idx)
            fp = sum(verdicts[i] and not pairs[i].label for i in idx)
            fn = sum(pairs[i].label and not verdicts[i] for i in idx)
            cells.append(f"{100 * acc:>16.1f} {fp:>3} {fn:>3}")
        agree = sum(len({ours[i], qwen[i], mv[i]}) == 1 for i in idx) / len(idx)
        print(f"{name:<14} {len(idx):>5} | " + " | ".join(cells) + f" | {100 * agree:>8.1f}")
    print(f"time: ours {t_ours:.1f} s, qwen2.5-math {t_qwen:.1f} s (own process), math-verify {t_mv:.1f} s")

    wrong = defaultdict(Counter)
    for gname, verdicts in graders.items():
        for i, q in enumerate(pairs):
            if verdicts[i] != q.label:
                wrong[gname][(q.set, q.kind, "FP" if verdicts[i] else "FN")] += 1
    for gname, counts in wrong.items():
        print(f"\n{gname}: where it differs from the label (set, kind, FP/FN: count)")
        for key, c in counts.most_common():
            print(f"  {key}: {c}")
    ours_wrong = [q for i, q in enumerate(pairs) if ours[i] != q.label]
    for q in ours_wrong[: args.show]:
        print(f"  ours wrong: {q.set} {q.kind} {q.pred!r} vs {q.gold!r} (label {q.label})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w") as f:
            for i, q in enumerate(pairs):
                if len({ours[i], qwen[i], mv[i], q.label}) > 1:
                    row = {k: v for k, v in asdict(q).items() if k != "record"}
                    row.update(
                        ours=ours[i],
                        qwen=qwen[i],
                        math_verify=mv[i],
                        qwen_gt=peer["pairs"][i]["gt"],
                        qwen_pred=peer["pairs"][i]["pred"],
                    )
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print("\nimport qwen-math: the peer's own output files (written by its evaluate + save_jsonl), imported:")
    check_import(peer["files"], pairs, args.data_dir, work)
    print("\nprompts (our string vs Qwen2.5-Math's template, zero-shot, 12 questions):")
    for ours_name, theirs, same in check_prompts(peer["prompts"], questions):
        print(f"  {ours_name:<16} vs {theirs:<16} {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
