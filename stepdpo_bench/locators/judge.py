"""The ``judge`` locator: a chat model (GPT-4o in the paper, or any ``vllm serve``) gives a verdict per step.

The judge sees the problem, a reference solution (or just the gold answer when the data has none) and the
solution with its steps numbered by us, so the step numbers in its reply are ours.  Replies are read by
``judge_parse``: a reply with no readable verdict is counted as unparseable, never guessed; a step number past
the end of the solution, or a summary that contradicts the per-step lines, is counted as invalid.

Two prompts: the pair pipeline's (the solution is known to be wrong; find where) and step-level evaluation's
(any solution, right answers included: is each step right?).  Both are part of what identifies the verdicts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .base import CORRECT, INVALID, UNCHECKED, UNPARSEABLE, WRONG, Location, StepVerdicts
from .judge_parse import parse_verdicts

JUDGE_PROMPT = """You are grading a student's solution to a math problem one step at a time.

## Problem
{problem}

## Reference solution
{reference}

## Student's solution (its final answer, {pred}, is wrong; the correct answer is {gold})
{solution}

## Your task
Go through the student's steps in order. For each step write exactly one line of the form
"Step k: correct", "Step k: neutral" or "Step k: incorrect", where neutral means the step neither advances nor
damages the solution (a restatement, an exploration). Stop after the first incorrect step."""

STEPS_PROMPT = """You are checking a student's solution to a math problem one step at a time.

## Problem
{problem}

## Reference solution
{reference}

## Student's solution (its final answer is {pred}; the correct answer is {gold})
{solution}

## Your task
A step is incorrect when its calculation or its reasoning is wrong, even if the final answer is right.
Go through the student's steps in order. For each step write exactly one line of the form
"Step k: correct", "Step k: neutral" or "Step k: incorrect", where neutral means the step neither advances nor
damages the solution (a restatement, an exploration). Stop after the first incorrect step."""

_MARKER = re.compile(r"^\s*(?:\*\*)?step\s*\d+\s*[:.)]\s*(?:\*\*)?\s*", re.I)


def _fill(template: str, problem: str, reference: str | None, gold: str, pred: str | None, steps: Sequence[str]) -> str:
    solution = "\n".join(f"Step {i}: {_MARKER.sub('', s, count=1)}" for i, s in enumerate(steps, 1))
    return template.format(
        problem=problem,
        reference=reference or f"(no worked solution; the answer is {gold})",
        gold=gold,
        pred=pred if pred is not None else "(none)",
        solution=solution,
    )


def judge_prompt(problem: str, reference: str | None, gold: str, pred: str | None, steps: Sequence[str]) -> str:
    """The pair pipeline's prompt: a wrong solution, where does it first go wrong?"""
    return _fill(JUDGE_PROMPT, problem, reference, gold, pred, steps)


def steps_prompt(problem: str, reference: str | None, gold: str, pred: str | None, steps: Sequence[str]) -> str:
    """Step-level evaluation's prompt: any solution, is each step right?"""
    return _fill(STEPS_PROMPT, problem, reference, gold, pred, steps)


def prompt_sha(template: str = STEPS_PROMPT) -> str:
    return hashlib.sha256(template.encode()).hexdigest()[:12]


def read_reply(reply: str, n_steps: int) -> Location:
    """A reply as the pipeline's location of the first wrong step."""
    r = parse_verdicts(reply)
    evidence = reply.strip()[:2000]
    if not r.parsed:
        return Location(None, 0.0, evidence, "judge", "unparseable", 1)
    if r.note.startswith("contradiction"):
        return Location(None, 0.0, f"{r.note}\n{evidence}", "judge", "invalid", 1)
    if r.first_incorrect is None:
        return Location(None, 0.0, evidence, "judge", "none", 1)
    if r.first_incorrect >= n_steps:
        return Location(
            None, 0.0, f"judge named step {r.first_incorrect + 1} of {n_steps}\n{evidence}", "judge", "invalid", 1
        )
    # an explicit per-step verdict is firmer than a summary line alone
    conf = 1.0 if r.verdicts.get(r.first_incorrect) == "incorrect" else 0.8
    return Location(r.first_incorrect, conf, evidence, "judge", "located", 1)


def read_steps(reply: str, n_steps: int) -> StepVerdicts:
    """A reply as step verdicts: ``neutral`` is not an error (correct), a step the judge did not reach or skipped
    is unchecked, and so is every step after the first incorrect one (the prompt says to stop there)."""
    r = parse_verdicts(reply)
    evidence = reply.strip()[:2000]
    if not r.parsed:
        return StepVerdicts.failed(n_steps, UNPARSEABLE, evidence, 1)
    if r.note.startswith("contradiction"):
        return StepVerdicts.failed(n_steps, INVALID, f"{r.note}\n{evidence}", 1)
    named = max(r.verdicts, default=-1)
    if (r.first_incorrect is not None and r.first_incorrect >= n_steps) or named >= n_steps:
        return StepVerdicts.failed(n_steps, INVALID, f"judge named a step past {n_steps}\n{evidence}", 1)
    out = [UNCHECKED] * n_steps
    if not r.verdicts and r.first_incorrect is None:  # "all steps are correct", no per-step lines
        out = [CORRECT] * n_steps
    for i, v in r.verdicts.items():
        out[i] = WRONG if v == "incorrect" else CORRECT
    if r.first_incorrect is not None:
        out[r.first_incorrect] = WRONG
        out[r.first_incorrect + 1 :] = [UNCHECKED] * (n_steps - r.first_incorrect - 1)
    return StepVerdicts.of(out, evidence, 1)


@dataclass
class JudgeItem:
    """One solution for the judge: its problem, the gold (and reference when the task has one), its steps."""

    question: str
    gold: str
    pred: str | None
    steps: list[str]
    reference: str | None = None


class StepJudge:
    """An OpenAI-compatible chat model as a step checker: greedy, one call per solution, batched."""

    def __init__(
        self,
        model: str,
        base_urls: list[str],
        api_key: str | None = None,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        from ..samplers import SamplingParams, make_sampler

        self.model = model
        self.sampler = make_sampler(
            "openai", model, base_urls=base_urls, api_key=api_key, timeout=timeout, max_retries=max_retries
        )
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens, n=1, seed=0)

    def verdicts(self, items: Sequence[JudgeItem]) -> list[StepVerdicts]:
        """Raises SamplerError when the judge stops answering (after its retries)."""
        msgs = [
            [{"role": "user", "content": steps_prompt(it.question, it.reference, it.gold, it.pred, it.steps)}]
            for it in items
        ]
        outs = self.sampler.generate(msgs, self.params)
        return [read_steps(cs[0].text, len(it.steps)) for it, cs in zip(items, outs, strict=True)]

    def close(self) -> None:
        self.sampler.close()
