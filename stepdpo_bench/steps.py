"""Split a solution into reasoning steps, once, so the app can diff them and the pipeline can cut prefixes."""

from __future__ import annotations

import re

_STEP = re.compile(r"(?:^|\n)\s*(?:\*\*)?Step\s+\d+\s*[:.)](?:\*\*)?", re.I)
_PARAGRAPH = re.compile(r"\n\s*\n")


def split_steps(solution: str) -> list[str]:
    """Steps by ``Step k:`` markers when present (each step keeps its marker), else by blank-line paragraphs.

    Text before the first marker (e.g. "Let's think step by step.") is its own step only if non-empty.
    """
    text = solution.strip()
    if not text:
        return []
    starts = [m.start() for m in _STEP.finditer(text)]
    if starts:
        bounds = [0, *starts] if starts[0] > 0 else starts
        pieces = [text[a:b] for a, b in zip(bounds, [*bounds[1:], len(text)], strict=True)]
    else:
        pieces = _PARAGRAPH.split(text)
    return [p.strip() for p in pieces if p.strip()]
