"""Step locators: per-step verdicts (correct / wrong / unchecked) and the first wrong step of a solution.

``exact`` (a task with step truth: arith), ``symbolic`` (checkable arithmetic in any step), ``judge`` (an
OpenAI-compatible chat model).  The harness owns them; the pair pipeline (``trainer``) uses them, never the
other way round.  ``rollout`` (the policy's own continuations) stays in the pipeline: it needs the policy.
"""

from __future__ import annotations

from .base import (
    CHECKED,
    CORRECT,
    INVALID,
    NOTHING_CHECKABLE,
    UNCHECKED,
    UNPARSEABLE,
    VERDICTS,
    WRONG,
    Location,
    StepVerdicts,
)

LOCATORS = ("exact", "symbolic", "judge")

__all__ = [
    "CHECKED",
    "CORRECT",
    "INVALID",
    "LOCATORS",
    "NOTHING_CHECKABLE",
    "UNCHECKED",
    "UNPARSEABLE",
    "VERDICTS",
    "WRONG",
    "Location",
    "StepVerdicts",
]
