"""The Step-DPO pair pipeline: collect -> locate the first wrong step -> rectify -> pairs (issue 5, in progress).

Landed so far: the two locator building blocks that need no model, each a pure function with a table of cases:
``symbolic`` (exact checking of arithmetic steps) and ``judge_parse`` (reading a judge model's per-step verdicts).
"""
