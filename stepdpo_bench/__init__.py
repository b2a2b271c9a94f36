"""stepdpo-bench: evaluate math-reasoning checkpoints, build Step-DPO pairs, compare runs on a leaderboard."""

__version__ = "0.1.0"
