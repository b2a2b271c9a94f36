"""What a locator says about a solution: a verdict per step and the first wrong one.

Two shapes, for two users.  The pair pipeline asks only *where* a wrong solution first goes wrong
(``Location``: a step or none, with a confidence and the evidence); step-level evaluation asks about *every*
step of every solution, right answers included (``StepVerdicts``: correct / wrong / unchecked per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CORRECT, WRONG, UNCHECKED = "correct", "wrong", "unchecked"
VERDICTS = (CORRECT, WRONG, UNCHECKED)
CHECKED, NOTHING_CHECKABLE, UNPARSEABLE, INVALID = "checked", "nothing checkable", "unparseable", "invalid"


@dataclass
class Location:
    """Where the first wrong step is (0-based), or None; with the locator's confidence and evidence."""

    step: int | None
    confidence: float
    evidence: str
    locator: str = "symbolic"
    outcome: str = ""  # located | none (no error found) | unclear | unparseable | invalid
    spent: int = 0  # model samples (or judge calls) this location cost


@dataclass
class StepVerdicts:
    """One solution's step verdicts (0-based, one per step of ``split_steps``) and its first wrong step.

    ``outcome`` says whether anything was checked: ``checked``, ``nothing checkable`` (no step could be judged),
    ``unparseable`` (a judge's reply with no readable verdict: counted, never guessed), ``invalid`` (a judge named
    a step the solution does not have, or contradicted itself).
    """

    verdicts: list[str]
    first_wrong: int | None
    outcome: str
    evidence: str = ""
    spent: int = 0  # judge calls (or policy samples) this cost
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, verdicts: list[str], evidence: str = "", spent: int = 0) -> StepVerdicts:
        """From per-step verdicts: the first wrong step and the outcome follow from them."""
        first = next((i for i, v in enumerate(verdicts) if v == WRONG), None)
        outcome = CHECKED if any(v != UNCHECKED for v in verdicts) else NOTHING_CHECKABLE
        return cls(list(verdicts), first, outcome, evidence, spent)

    @classmethod
    def failed(cls, n_steps: int, outcome: str, evidence: str, spent: int = 0) -> StepVerdicts:
        """A solution the locator could not judge: every step unchecked, the reason kept."""
        return cls([UNCHECKED] * n_steps, None, outcome, evidence, spent)
