r"""The reasoning-benchmark suite: AIME 2024/2025, AMC 2023, Minerva Math, OlympiadBench, CollegeMath.

Each set's gold is read by its own rules here, so the grader sees one canonical gold string per problem:

- **AIME**: an integer 0-999 (``033`` is 33); anything else is refused naming the record.  The contest (AIME I
  or II) comes from the AoPS url (aime24) or the position (aime25: rows 0-14 are AIME I, 15-29 AIME II, checked
  against the published answers of I/1, I/15, II/1 and II/15).
- **AMC**: golds are JSON floats (``27.0`` is 27); the contest (AMC 12A/12B) comes from the url.
- **Minerva**: the last ``\boxed{}`` of the solution, with the unit written after the box (``\boxed{1.6}
  \mathrm{~cm}``) kept beside it when the grader knows that unit, so a prediction with the same unit or none
  matches and one with another unit does not.  The precision a problem asks for ("to 2 significant figures") is
  read from the question by the grader.
- **OlympiadBench**: ``final_answer`` is a list of ``$...$`` strings; with ``is_multiple_answer`` the gold is the
  list of all of them (any order; the grader compares a bare list as a set), ``unit`` is appended as the
  answer's unit (with or without it is the same answer, another unit is not).  ``answer_type`` is kept as the
  problem's level (the second breakdown), ``subfield`` as its subject.
- **CollegeMath**: the answer as written (words, equations and lists included); ``data_topic`` is the subject.

aime25's file has JSON-escape casualties (``\f`` of ``\frac`` read as a form feed, ``\t`` of ``\triangle`` as a
tab): the loader repairs them and records each repair in the task's meta (the file stays as it is).
"""

from __future__ import annotations

import re
from typing import Any

from ..grading import extract_gold
from ..grading.normalize import normalize_with_unit
from .base import Problem, TaskError, require

# LaTeX commands whose backslash became a control character when the JSON was written with one backslash
_CONTROL_COMMANDS = {
    "\f": ("frac", "forall", "flat"),
    "\t": ("triangle", "times", "text", "theta", "tan", "tau", "tfrac", "to", "top", "tilde"),
    "\b": ("beta", "binom", "bar", "boxed", "bigcup", "bmod"),
    "\v": ("vec", "varepsilon", "varphi", "vdots"),
    "\r": ("right", "rho", "rangle", "rm"),
}
_CONTROL = re.compile("[" + "".join(_CONTROL_COMMANDS) + "]([A-Za-z]+)")


def repair_escapes(text: str) -> tuple[str, list[str]]:
    r"""Undo JSON-escape casualties: a control character followed by the rest of a LaTeX command (form feed +
    ``rac`` is ``\frac``).  Returns the text and what was repaired; text that is not such a casualty is kept."""
    repaired: list[str] = []

    def fix(m: re.Match[str]) -> str:
        ch, rest = m.group(0)[0], m.group(1)
        letter = {"\f": "f", "\t": "t", "\b": "b", "\v": "v", "\r": "r"}[ch]
        for cmd in _CONTROL_COMMANDS[ch]:
            if (letter + rest).startswith(cmd):
                repaired.append(f"{ch!r}{rest[: len(cmd) - 1]} -> \\{cmd}")
                return "\\" + letter + rest
        return m.group(0)

    return _CONTROL.sub(fix, text), repaired


def _text(rec: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    """The first of ``keys`` the record has (local files and Hub copies name the question differently)."""
    for k in keys:
        if rec.get(k) is not None:
            return require(rec, k, where, str)
    return require(rec, keys[0], where, str)


def _aime_gold(value: Any, where: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,3}", text):
        raise TaskError(f"{where}: field 'answer' should be an AIME answer (an integer 0-999), not {value!r}")
    return str(int(text))


_CONTEST = re.compile(r"(\d{4})_(AIME_I{1,2}|AMC_1[02][AB])_Problems/Problem_(\d+)")


def _contest(url: Any) -> str | None:
    m = _CONTEST.search(str(url or ""))
    return m.group(2).replace("_", " ") if m else None


def aime(name: str):
    """A parser for aime24 or aime25 (same rules, different files)."""

    def parse(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
        question = _text(rec, ("problem", "question"), where)
        repairs: list[str] = []
        if name == "aime25":
            question, repairs = repair_escapes(question)
        contest = _contest(rec.get("url"))
        if contest is None and name == "aime25" and rec.get("_config") is None:
            contest = "AIME I" if i < 15 else "AIME II"  # the file's order, checked at both ends of both contests
        elif rec.get("_config"):
            contest = "AIME II" if str(rec["_config"]).endswith("II") else "AIME I"
        pid = rec.get("id")
        return Problem(
            f"{name}/{pid if pid is not None else i}",
            question,
            _aime_gold(require(rec, "answer", where), where),
            subject=contest,
            reference=rec.get("solution"),
            repairs=tuple(repairs),
        )

    return parse


def amc(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    value = require(rec, "answer", where, (str, int, float))
    gold = str(value).strip()
    if isinstance(value, float):  # AMC golds are JSON floats: 27.0 is 27
        gold = str(int(value)) if value.is_integer() else repr(value)
    pid = rec.get("id")
    return Problem(
        f"amc23/{pid if pid is not None else i}",
        _text(rec, ("problem", "question"), where),
        gold,
        subject=_contest(rec.get("url")),
    )


_AFTER_BOX = re.compile(r"^\s*((?:\\(?:mathrm|text|mbox|rm)\s*\{[^{}]*\}|[A-Za-z]+(?:/[A-Za-z]+)?)(?:\^\{?-?\d\}?)?)")


def unit_after_box(solution: str) -> str | None:
    r"""The unit written right after the solution's last box (``\boxed{1.6} \mathrm{~cm}`` -> ``\mathrm{~cm}``),
    when the grader knows it as a unit; None otherwise (``\boxed{41.8}^{\circ}`` needs none: degrees are dropped)."""
    end = _last_box_end(solution)
    if end is None:
        return None
    m = _AFTER_BOX.match(solution[end:])
    if not m:
        return None
    tail = m.group(1).strip()
    _, unit = normalize_with_unit(f"1 {tail}")
    return tail if unit else None


def _last_box_end(s: str) -> int | None:
    start = s.rfind("\\boxed")
    if start < 0:
        return None
    brace = s.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for k in range(brace, len(s)):
        depth += s[k] == "{"
        depth -= s[k] == "}"
        if depth == 0:
            return k + 1
    return None


def minerva(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    solution = rec.get("solution")
    if solution is None and rec.get("answer") is not None:  # Hub copies with the answer split out
        gold = str(rec["answer"]).strip()
        solution = None
    else:
        solution = require(rec, "solution", where, str)
        gold = extract_gold(solution, "math") if _last_box_end(solution) is not None else ""
        if not gold:
            raise TaskError(f"{where}: field 'solution' has no \\boxed{{}} gold answer")
        unit = unit_after_box(solution)
        if unit:
            gold = f"{gold} {unit}"
    pid = rec.get("idx", i)
    return Problem(
        f"minerva_math/{pid}",
        _text(rec, ("problem", "question"), where),
        gold,
        subject=rec.get("type"),
        reference=solution,
    )


_DOLLARS = re.compile(r"\$([^$]*)\$")


def _answer_items(text: str, multiple: bool) -> list[str]:
    """``$69$,$84$`` -> [``69``, ``84``]; ``1,3,5`` (multiple) -> [``1``, ``3``, ``5``]; one ``$...$`` -> itself."""
    text = text.strip()
    spans = _DOLLARS.findall(text)
    if spans and _DOLLARS.sub("", text).strip(" ,;.") == "":  # "$a$,$b$" or "$(0,1)$." (a full stop after it)
        items = [s.strip() for s in spans]
        return items if multiple else [", ".join(items)]
    return [text.strip("$ ")]


def olympiadbench(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    answers = require(rec, "final_answer", where, (list, str))
    if isinstance(answers, str):
        answers = [answers]
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise TaskError(f"{where}: field 'final_answer' should be a non-empty list of strings")
    multiple = bool(rec.get("is_multiple_answer"))
    items = [x for a in answers for x in _answer_items(a, multiple)]
    gold = ", ".join(items)
    unit = rec.get("unit")
    if unit and len(items) == 1:
        u = str(unit).strip().strip("$").strip()
        gold = f"{gold} {u}" if u.startswith(("^", "\\")) or normalize_with_unit(f"1 {u}")[1] else gold
    question = require(rec, "question", where, str)
    if rec.get("context"):
        question = f"{rec['context']}\n{question}"
    solution = rec.get("solution")
    return Problem(
        f"olympiadbench/{rec.get('id', i)}",
        question,
        gold,
        subject=rec.get("subfield"),
        level=rec.get("answer_type"),
        reference="\n".join(solution) if isinstance(solution, list) else solution,
    )


def college_math(i: int, rec: dict[str, Any], split: str, where: str) -> Problem:
    answer = require(rec, "answer", where, (str, int, float))
    topic = rec.get("data_topic")
    return Problem(
        f"college_math/{split}/{i}",
        require(rec, "question", where, str),
        str(answer).strip(),
        subject=str(topic).removeprefix("college_math.") if topic else None,
    )
