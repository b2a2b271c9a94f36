"""Names and formats that several parts of the project share, owned here so each is spelled once.

The trainer writes these files into a checkpoint or output directory; the harness reads the tag when it evaluates
a trained checkpoint, the index reads the logs for the app's Training page.  The CI gate writes deep links into
the app's Samples page; the app parses them.
"""

from __future__ import annotations

from urllib.parse import urlencode

TRAIN_TAG = "stepdpo_train.json"  # in a trained checkpoint: method, base model, data, steps
TRAIN_LOG = "train_log.jsonl"  # one line per optimizer step
TRAIN_CONFIG = "train_config.json"  # the training run's full configuration, beside the log

SAMPLES_PAGE = "Samples"
LINK_KEYS = ("page", "a", "b", "problem")


def samples_link(app_url: str, baseline: str, candidate: str, problem_id: str) -> str:
    """A link that opens the app's Samples page on two runs and one problem."""
    query = urlencode({"page": SAMPLES_PAGE, "a": baseline, "b": candidate, "problem": problem_id})
    return f"{app_url.rstrip('/')}/?{query}"


def parse_link(query: dict[str, str]) -> dict[str, str]:
    """The parts of a deep link the app understands (``page``, ``a``, ``b``, ``problem``); others are ignored."""
    return {k: str(query[k]) for k in LINK_KEYS if k in query}
