"""Reading a judge model's per-step verdicts (the ``judge`` locator's parser).

The paper's judge prompt asks for one verdict per step (correct / neutral / incorrect), stopping at the first
incorrect one.  Real replies vary: ``Step 3: incorrect``, ``**Step 3:** Incorrect``, ``Step 3 - Incorrect``,
``- Step 3 (incorrect)``, ``Step 3 is incorrect``, a closing ``The first incorrect step is Step 3``.  We read all of
them; ``neutral`` is not an error; a reply from which no verdict can be read is reported as unparseable, never
guessed.  Step numbers are 1-based in the reply and 0-based in the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_VERDICT = r"(incorrect|not correct|wrong|erroneous|correct|right|neutral)"
_LINE = re.compile(
    rf"step\s*(\d+)\s*(?:\*\*)?\s*(?:[:\-–—.)]|\bis\b|\()?\s*(?:\*\*)?\s*(?:verdict\s*:\s*)?(?:\*\*)?\s*{_VERDICT}\b",
    re.I,
)
_SUMMARY = re.compile(r"first\s+(?:incorrect|wrong|erroneous)\s+step\s*(?:is|:)?\s*(?:\*\*)?\s*step\s*(\d+)", re.I)
_NONE_WRONG = re.compile(r"\b(?:all|every)\s+steps?\s+(?:are|is)\s+(?:correct|right)\b|\bno\s+incorrect\s+step", re.I)
_WRONG = {"incorrect", "not correct", "wrong", "erroneous"}


@dataclass
class JudgeReading:
    parsed: bool
    first_incorrect: int | None  # 0-based step index
    verdicts: dict[int, str] = field(default_factory=dict)  # 0-based step -> correct | neutral | incorrect
    note: str = ""


def parse_verdicts(reply: str) -> JudgeReading:
    verdicts: dict[int, str] = {}
    for m in _LINE.finditer(reply or ""):
        idx = int(m.group(1)) - 1
        word = m.group(2).lower()
        kind = "incorrect" if word in _WRONG else "neutral" if word == "neutral" else "correct"
        verdicts.setdefault(idx, kind)  # the first verdict given for a step counts
    summary = _SUMMARY.search(reply or "")
    first = min((i for i, v in verdicts.items() if v == "incorrect"), default=None)
    if summary:
        s_idx = int(summary.group(1)) - 1
        if first is not None and s_idx != first:
            return JudgeReading(True, None, verdicts, f"contradiction: step {first + 1} vs summary step {s_idx + 1}")
        first = s_idx
    if first is None and not verdicts:
        if _NONE_WRONG.search(reply or ""):
            return JudgeReading(True, None, {}, "judge found no incorrect step")
        return JudgeReading(False, None, {}, "no verdict could be read")
    return JudgeReading(True, first, verdicts, "")
