"""The ``stepdpo-bench`` command line: the face of the project.  Each command parses its options, calls one
library function, and prints; the logic lives in the library (evaluate, gate, watch, leaderboard, trainer).

This package is the one place that imports the trainer (``train``, ``demo``, ``pairs``); nothing imports it.
"""

from __future__ import annotations

from . import board, evaluation, gating, grading_cmd, interop, steps_cmd, training  # noqa: F401  (they register commands)
from .common import app

__all__ = ["app"]
