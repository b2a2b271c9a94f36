"""Text overlap between problem sets: exact (after normalisation) and shared word n-grams.

Used by the pair pipeline's contamination guard and by the ``arith`` generator (whose train split avoids test
near-duplicates).  Normalisation folds case, punctuation and LaTeX spacing; the default n = 13 is the GPT-3
paper's decontamination length; texts shorter than n words are compared exactly only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\\!", "").replace("\\,", ""))


@dataclass
class OverlapIndex:
    n: int = 13
    exact: dict[str, str] = field(default_factory=dict)  # normalised text -> id
    grams: dict[int, str] = field(default_factory=dict)  # hash of an n-gram -> id

    def add(self, pid: str, text: str) -> None:
        w = words(text)
        self.exact.setdefault(" ".join(w), pid)
        for i in range(len(w) - self.n + 1):
            self.grams.setdefault(hash(tuple(w[i : i + self.n])), pid)

    def match(self, text: str) -> str | None:
        """Why ``text`` overlaps the index (``exact:<id>`` / ``13-gram:<id>``), or None."""
        w = words(text)
        if (pid := self.exact.get(" ".join(w))) is not None:
            return f"exact:{pid}"
        for i in range(len(w) - self.n + 1):
            if (pid := self.grams.get(hash(tuple(w[i : i + self.n])))) is not None:
                return f"{self.n}-gram:{pid}"
        return None
