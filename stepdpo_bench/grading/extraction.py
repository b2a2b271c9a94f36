r"""Find the final answer in a model completion, and the gold answer in a dataset record.

Each task has an answer *convention*.  ``math`` and ``odyssey`` answers are boxed, or stated in a final-answer
sentence; ``gsm8k`` and the synthetic ``arith`` task end with ``#### N`` or a plain number.  The rule that found
the answer is recorded on every sample (``method``), so a run shows how many answers only a fallback found:

=============  ===========================================================================================
``boxed``       the last ``\boxed{}``/``\fbox{}`` (and, for a list gold, the final group of boxes)
``####``        GSM8K's ``#### N`` (numeric conventions)
``final-answer`` Minerva's "Final Answer: The final answer is X. I hope it is correct." or any "Final Answer:"
                line, read as prose: ``The volume of $ABCDEFGH$ is 120.`` gives ``120``
``answer-is``   "the answer is X" / "answer: X"
``last-math``   no box and no answer sentence: the last math span (``$..$``, ``\(..\)``, ``\[..\]``) of the
                last sentence that has one
``whole-text``  the completion is itself a bare answer (``7,425,000``, ``\frac{10}{9}``, ``28 percent``)
``last-number`` numeric conventions: the last number in the text; math and odyssey: only the number that the
                last sentence states ("... is 2/3.", "there are 12 sequences"), never scratch work
``none``        nothing found
=============  ===========================================================================================

A final-answer or answer-is sentence written *after* the last box wins over it (``\boxed{255}`` ... "The final
answer is $10,455$").  No last-number fallback for ``math``: unboxed scratch work is not an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import strip_delimiters

TASKS = ("math", "gsm8k", "odyssey", "arith")
NUMERIC_TASKS = ("gsm8k", "arith")
METHODS = ("boxed", "####", "final-answer", "answer-is", "last-math", "whole-text", "last-number", "none")

_BOX_CMDS = ("\\boxed", "\\fbox", "\\framebox")
_CHAT_JUNK = re.compile(r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end\|>|</s>")
_FINAL_LINE = re.compile(r"final\s+answer\s*[:：]\s*(.*?)(?:\n|$)", re.I)
_HOPE = re.compile(r"\s*I\s+hope\s+it\s+is\s+correct\.?.*$", re.I | re.S)
_ANSWER_IS = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:\n|$)", re.I)
_FINAL_IS = re.compile(r"^\s*(?:the\s+)?final\s+answer\s+is\s*:?\s*", re.I)
_HASHES = re.compile(r"####\s*(.+?)\s*(?:\n|$)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_PLAIN_NUM = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^-?\d+(?:\.\d+)?$")
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_ANSWERISH_WORDS = frozenset(  # words a bare answer may carry: connectives, units, percent and number words
    [
        "and",
        "or",
        "percent",
        "pct",
        "percentage",
        "degrees",
        "degree",
        "units",
        "unit",
        "cm",
        "mm",
        "km",
        "ft",
        "feet",
        "foot",
        "inches",
        "inch",
        "in",
        "yd",
        "yards",
        "meters",
        "miles",
        "mph",
        "dollars",
        "cents",
        "hours",
        "minutes",
        "seconds",
        "days",
        "weeks",
        "years",
        "sq",
        "square",
        "cubic",
        "pi",
        "infty",
        "sqrt",
        "frac",
        "text",
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "thousand",
    ]
)
_MAX_GAP = 60  # characters between boxes that still make one group ("$ and $", "\quad\text{and}\quad")


@dataclass(frozen=True)
class Extraction:
    """What was found: the answer, every candidate (e.g. all boxes), the rule that found it, and ``group``: the
    final boxes written together (``\\boxed{1} and \\boxed{2}``), which a list gold compares against."""

    answer: str | None
    method: str
    candidates: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)


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


def boxes(text: str) -> list[tuple[str, int, int]]:
    """Every box as (content, start, end) in order of appearance: ``\\boxed{...}``, ``\\boxed 5``, ``\\fbox{...}``."""
    out: list[tuple[str, int, int]] = []
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
            out.append((group[0].strip(), i, group[1]))
            pos = group[1]
        else:
            m = re.match(r"[^\s$]+", text[j:])
            if m:
                out.append((m.group(0), i, j + m.end()))
            pos = j + (m.end() if m else 0) + 1


def boxed_contents(text: str) -> list[str]:
    """All box contents in order of appearance."""
    return [b for b, _, _ in boxes(text)]


def _sentence_break(gap: str) -> bool:
    return "\n\n" in gap or bool(re.search(r"[.!?](?:\s+[A-Z]|\s*$)", gap.replace("$", "").strip()))


_ALTERNATIVES = re.compile(r"\b(?:or|either|alternatively|also\s+accept\w*|acceptable)\b", re.I)
_CONNECTORS = re.compile(r"\\text\{[^{}]*\}|\\q?quad|\band\b|[\s,$()\\\[\]]")


def final_group(found: list[tuple[str, int, int]], text: str, connectors_only: bool = False) -> list[str]:
    """The boxes (or math spans) at the end that were written together: separated by short gaps with no sentence
    break.  ``connectors_only`` (gold answers): gaps may hold only commas, "and", spacing, math delimiters, a name
    being assigned (``$ and $x = ``) or a word or two labelling the values ("papers and"), never "or", and no
    remark after them that either one is acceptable (a gold's "\boxed{x+11} or \boxed{11+x}" lists alternative
    forms, not two answers)."""
    if not found:
        return []
    group = [found[-1]]
    for prev in reversed(found[:-1]):
        gap = text[prev[2] : group[0][1]]
        if len(gap) > _MAX_GAP or _sentence_break(gap):
            break
        if connectors_only:
            if _ALTERNATIVES.search(gap):
                break
            rest = _CONNECTORS.sub(" ", re.sub(r"[A-Za-z](?:_\{?\w+\}?)?\s*=", " ", gap)).split()
            if len(rest) > 2 or not all(w.isalpha() for w in rest):
                break
        group.insert(0, prev)
    if connectors_only and _ALTERNATIVES.search(text[group[-1][2] : group[-1][2] + 120]):
        return []
    return [b for b, _, _ in group] if len(group) > 1 else []


def _cut_sentence(s: str) -> str:
    """The first sentence of ``s`` (a dot followed by a space or the end, outside math, ends it)."""
    depth = 0
    for i, c in enumerate(s):
        if c == "$":
            depth ^= 1
        elif (
            c == "."
            and not depth
            and (i + 1 == len(s) or s[i + 1] in " \n")
            and (not s[i - 1 : i].isdigit() or s[i + 1 :].strip()[:1].isupper())
        ):
            return s[:i]
    return s


def math_spans(text: str) -> list[tuple[str, int, int]]:
    """Math-mode spans as (content, start, end): ``$$..$$``, ``$..$``, ``\\(..\\)``, ``\\[..\\]``.  Inline ``$``
    spans do not cross a newline."""
    out = []
    pattern = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$((?:[^$\n\\]|\\.)+?)(?<!\\)\$|\\\(([^\n]+?)\\\)|\\\[(.+?)\\\]", re.S)
    for m in pattern.finditer(text):
        inner = next(g for g in m.groups() if g is not None)
        if inner.strip():
            out.append((inner.strip(), m.start(), m.end()))
    return out


def _mask_math(s: str) -> str:
    """``s`` with every math span's content replaced by spaces (same length), so prose rules never look inside."""
    out = list(s)
    for _, a, b in math_spans(s):
        for i in range(a + 1, b - 1):
            out[i] = " "
    return "".join(out)


def _answer_in_sentence(s: str) -> tuple[str, list[str]] | None:
    """The answer a prose sentence states: what follows its last "is"/"are"/"equals" (a math span there, or the
    rest), else its last math span, else its last number.  ``The largest $n$ is 34.`` -> ``34``.  Also the final
    group of spans written together (``$12$ and $13$``), for a list gold."""
    s = _FINAL_IS.sub("", _HOPE.sub("", s)).strip()
    s = _cut_sentence(s).strip().rstrip(".").strip()
    if not s:
        return None
    verbs = list(re.finditer(r"(?:^|\s)(?:is|are|equals|was)\s", _mask_math(s)))
    tail = s[verbs[-1].end() :].strip() if verbs else None
    if tail:
        spans = math_spans(tail)
        if spans:
            return spans[-1][0], final_group(spans, tail, connectors_only=True)
        cleaned = strip_delimiters(tail)
        if cleaned and not _prose(cleaned):
            return cleaned, []
    spans = math_spans(s)
    if spans:
        return spans[-1][0], final_group(spans, s, connectors_only=True)
    if not _prose(s):
        return strip_delimiters(s), []
    nums = _NUMBER.findall(_mask_math(s))
    return (nums[-1].replace("$", ""), []) if nums else None


def _prose(s: str) -> bool:
    """Words that a bare answer would not carry (``so it is 14``, ``Answer``); units and "and" are fine."""
    return any(w.lower() not in _ANSWERISH_WORDS for w in _PROSE_WORD.findall(s))


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
    return t.replace(",", "") if _PLAIN_NUM.match(t) else ans


def _last_number(text: str) -> str | None:
    nums = _NUMBER.findall(text)
    if not nums:
        return None
    return nums[-1].replace("$", "").replace(",", "").rstrip(".")


def _sentences(text: str) -> list[str]:
    """Split prose into sentences at ``. `` / newlines outside math; math spans stay whole."""
    spans = math_spans(text)
    masked = list(text)
    for _, a, b in spans:
        for i in range(a, b):
            if masked[i] in ".\n":
                masked[i] = " "
    cuts = [m.end() for m in re.finditer(r"(?<!\d)\.(?=\s|$)|\n", "".join(masked))]
    cuts = sorted(set(cuts + [b for inner, _, b in spans if inner.endswith(".")]))  # "... = 2.$$ Therefore"
    out, start = [], 0
    for c in [*cuts, len(text)]:
        piece = text[start:c].strip()
        if piece:
            out.append(piece)
        start = c
    return out


def _last_math(text: str) -> tuple[str, list[str]] | None:
    """The last math span of the last sentence that has one (skipping trailing sentences with no math and no
    digit: pleasantries), and the final group of spans written together (``$1$ and $2$``)."""
    for sentence in reversed(_sentences(text)):
        spans = math_spans(sentence)
        if spans:
            return spans[-1][0], final_group(spans, sentence, connectors_only=True)
        if any(c.isdigit() for c in sentence):
            return None
    return None


def _statements(text: str) -> list[tuple[int, str, str, list[str]]]:
    """(position, method, answer, group) for every final-answer and answer-is statement that yields an answer."""
    out, taken = [], []
    for m in _FINAL_LINE.finditer(text):
        taken.append((m.start(), m.end()))
        found = _answer_in_sentence(m.group(1))
        if found:
            out.append((m.start(), "final-answer", *found))
    for m in _ANSWER_IS.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue  # the "Final Answer:" line itself, already read
        found = _answer_in_sentence("is " + m.group(1))
        if found:
            out.append((m.start(), "answer-is", *found))
    return sorted(out, key=lambda x: x[0])


def extract(completion: str, task: str = "math") -> Extraction:
    """Extract the final answer from a completion according to the task's convention."""
    if task not in TASKS:
        raise ValueError(f"unknown task convention {task!r}; expected one of {', '.join(TASKS)}")
    text = completion or ""
    junk = _CHAT_JUNK.search(text)
    if junk:  # a model that runs on into a new chat turn: what follows is not its answer
        text = text[: junk.start()]
    if task in NUMERIC_TASKS:
        hashes = _HASHES.findall(text)
        if hashes:
            return Extraction(_plain_number(_clean(hashes[-1])), "####", hashes)
    found = boxes(text)
    statements = _statements(text)
    if found:
        late = [s for s in statements if s[0] > found[-1][2]]
        if late:
            _, method, ans, group = late[-1]
            return Extraction(_numeric(ans, task), method, [s[2] for s in statements], group)
        contents = [b for b, _, _ in found]
        return Extraction(contents[-1], "boxed", contents, final_group(found, text))
    if statements:
        _, method, ans, group = statements[-1]
        return Extraction(_numeric(ans, task), method, [s[2] for s in statements], group)
    last = _last_math(text)
    if last is not None:
        return Extraction(_numeric(last[0], task), "last-math", [last[0]], last[1])
    bare = strip_delimiters(text.strip())
    if bare and len(bare) <= 200 and not _prose(bare) and "\n" not in bare and "\\boxed" not in bare:
        return Extraction(_numeric(bare, task), "whole-text", [bare])
    if task in NUMERIC_TASKS:
        num = _last_number(text)
        if num is not None:
            return Extraction(num, "last-number", [num])
    stated = _stated_number(text)
    if stated is not None:
        return Extraction(stated, "last-number", [stated])
    return Extraction(None, "none")


_STATED = re.compile(
    r"(?:(?:^|\s)(?:is|are|equals|was)|(?<=\w)['’]s|\s:)\s+(?:about\s+|exactly\s+)?|"
    r"\sby\s+(?=[\d.,]+\s*(?:%|percent))"
)  # "increases by 100%"
_LEADING_NUMBER = re.compile(r"[$€£]?\s*(-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?)\s*(%|percent)?")


def _stated_number(text: str) -> str | None:
    """The math convention's last resort, for prose with no box, no answer sentence and no math: the number the
    last sentence states (``... the probability that Alice wins is 2/3.``, ``there are 12 sequences``).  Only a
    number right after "is"/"are"/"equals" counts; scratch work elsewhere never does."""
    sentences = _sentences(_HOPE.sub("", text))
    if not sentences or not any(c.isdigit() for c in sentences[-1]):
        return None
    last = _mask_math(sentences[-1])
    verbs = list(_STATED.finditer(last))
    if not verbs:
        return None
    tail = last[verbs[-1].end() :]
    m = _LEADING_NUMBER.match(tail)
    if not m or (verbs[-1].group(0).strip() == ":" and any(c.isdigit() for c in tail[m.end() :])):
        return None  # after a colon only a lone number counts ("Step 3: 5 + 4 = 9" is work, not an answer)
    return (m.group(1) + ((m.group(2) and "%") or "")).strip()


def _numeric(ans: str, task: str) -> str:
    """Numeric conventions keep only the number of a stated answer (``$18.`` -> ``18``)."""
    ans = _clean(ans) if "$" in ans else ans
    if task not in NUMERIC_TASKS:
        return ans
    num = _last_number(ans) if not _PLAIN_NUM.match(ans.replace("$", "").strip()) else None
    return _plain_number(ans) if num is None else num


def extract_answer(completion: str, task: str = "math") -> str | None:
    """The final answer of ``completion`` under ``task``'s convention, or None when there is none."""
    return extract(completion, task).answer


_ODYSSEY_TAIL = re.compile(r"(?:\\\\|\\noindent|\s)+$")


def extract_gold(raw: str | list[str], task: str = "math") -> str:
    """Gold answer from a dataset field.

    - ``math``: the last ``\\boxed{}`` of a solution (the full MATH test file has no answer field), or the final
      group of boxes joined by "and"/commas (``$\\boxed{-2}$ and $\\boxed{1}$``: both are the answer), or the
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
        found = boxes(text)
        if not found:
            return strip_delimiters(text)
        group = final_group(found, text, connectors_only=True)
        return ", ".join(group) if group else found[-1][0]
    if task in NUMERIC_TASKS:
        if "####" in text:
            text = text.rsplit("####", 1)[1]
        return strip_delimiters(text).replace(",", "")
    if task == "odyssey":
        return strip_delimiters(_ODYSSEY_TAIL.sub("", text))
    raise ValueError(f"unknown task convention {task!r}; expected one of {', '.join(TASKS)}")
