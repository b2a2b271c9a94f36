"""Find the final answer in a model completion, and the gold answer in a dataset record.

Each task has an answer *convention*: MATH and Odyssey answers are boxed (or stated as "The answer is ..."),
GSM8K and the synthetic ``arith`` task end with ``#### N`` or a plain number.  A last-number fallback is used
only where the convention is a single number (``gsm8k``, ``arith``); for MATH it would grade unboxed scratch
work as an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import strip_delimiters

TASKS = ("math", "gsm8k", "odyssey", "arith")
NUMERIC_TASKS = ("gsm8k", "arith")

_BOX_CMDS = ("\\boxed", "\\fbox", "\\framebox")
_MINERVA = re.compile(r"final answer is\s*(.+?)\s*\.?\s*I hope it is correct", re.I | re.S)
_ANSWER_IS = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:\n|$)", re.I)
_HASHES = re.compile(r"####\s*(.+?)\s*(?:\n|$)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _balanced_group(text: str, start: int) -> tuple[str, int] | None:
    """Content of the ``{...}`` group opening at ``text[start]``, honouring nesting and ``\\{``; None if unclosed."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def boxed_contents(text: str) -> list[str]:
    """All ``\\boxed{...}`` / ``\\boxed 5`` / ``\\fbox{...}`` contents in order of appearance."""
    out: list[str] = []
    pos = 0
    while True:
        hits = [(text.find(cmd, pos), cmd) for cmd in _BOX_CMDS]
        hits = [(i, c) for i, c in hits if i >= 0]
        if not hits:
            return out
        i, cmd = min(hits)
        j = i + len(cmd)
        if j < len(text) and text[j].isalpha():  # \boxedx is another command
            pos = j
            continue
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            group = _balanced_group(text, j)
            if group is None:
                return out
            out.append(group[0].strip())
            pos = group[1]
        else:
            m = re.match(r"[^\s$]+", text[j:])
            if m:
                out.append(m.group(0))
            pos = j + (m.end() if m else 0) + 1
    return out


@dataclass(frozen=True)
class Extraction:
    """What was found: the answer, every candidate (e.g. all boxes), and which rule found it."""

    answer: str | None
    method: str
    candidates: list[str] = field(default_factory=list)


def _clean(ans: str) -> str:
    ans = strip_delimiters(ans.strip())
    # "The answer is $5$ apples." -> keep the math part when the sentence wraps one
    m = re.fullmatch(r"[^$]*?\$([^$]+)\$.*", ans, re.S)
    if m and "\\boxed" not in ans:
        ans = m.group(1)
    return strip_delimiters(ans)


def _plain_number(ans: str) -> str:
    """``$2,125`` -> ``2125`` for the numeric conventions; anything that is not such a number is kept."""
    t = ans.replace("\\$", "").replace("$", "").strip()
    return t.replace(",", "") if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?", t) else ans


def _last_number(text: str) -> str | None:
    nums = _NUMBER.findall(text)
    if not nums:
        return None
    return nums[-1].replace("$", "").replace(",", "").rstrip(".")


def extract(completion: str, task: str = "math") -> Extraction:
    """Extract the final answer from a completion according to the task's convention."""
    if task not in TASKS:
        raise ValueError(f"unknown task convention {task!r}; expected one of {', '.join(TASKS)}")
    text = completion or ""
    if task in NUMERIC_TASKS:
        hashes = _HASHES.findall(text)
        if hashes:
            return Extraction(_plain_number(_clean(hashes[-1])), "####", hashes)
    boxes = boxed_contents(text)
    if boxes:
        return Extraction(boxes[-1], "boxed", boxes)
    m = _MINERVA.findall(text)
    if m:
        return Extraction(_clean(m[-1]), "minerva", m)
    m = _ANSWER_IS.findall(text)
    if m:
        ans = _clean(m[-1])
        if task in NUMERIC_TASKS:
            num = _last_number(ans)
            ans = num if num is not None else ans
        if ans:
            return Extraction(ans, "answer-is", m)
    if task in NUMERIC_TASKS:
        num = _last_number(text)
        if num is not None:
            return Extraction(num, "last-number", [num])
    return Extraction(None, "none")


def extract_answer(completion: str, task: str = "math") -> str | None:
    """The final answer of ``completion`` under ``task``'s convention, or None when there is none."""
    return extract(completion, task).answer


_ODYSSEY_TAIL = re.compile(r"(?:\\\\|\\noindent|\s)+$")


def extract_gold(raw: str | list[str], task: str = "math") -> str:
    """Gold answer from a dataset field.

    - ``math``: the last ``\\boxed{}`` of a solution (the full MATH test file has no answer field), or the
      ``answer`` field itself (MATH-500).
    - ``gsm8k``: the text after ``####`` (thousands separators removed); the Step-DPO copy's one-item list too.
    - ``odyssey``: the answer without its LaTeX residue (``16\\\\\\n\\noindent``) and math delimiters.
    """
    if isinstance(raw, list):
        if len(raw) != 1:
            raise ValueError(f"expected a one-element gold list, got {len(raw)} elements")
        raw = raw[0]
    text = str(raw)
    if task == "math":
        boxes = boxed_contents(text)
        return boxes[-1] if boxes else strip_delimiters(text)
    if task in NUMERIC_TASKS:
        if "####" in text:
            text = text.rsplit("####", 1)[1]
        return strip_delimiters(text).replace(",", "")
    if task == "odyssey":
        return strip_delimiters(_ODYSSEY_TAIL.sub("", text))
    raise ValueError(f"unknown task convention {task!r}; expected one of {', '.join(TASKS)}")
