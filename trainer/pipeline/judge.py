"""The ``judge`` locator: ask a chat model (GPT-4o in the paper, or a local ``vllm serve``) for per-step verdicts.

The judge sees the problem, a reference solution (or just the gold answer when the data has none) and the wrong
solution with its steps numbered by us, so the step numbers in its reply are ours.  Replies are read by
``judge_parse``: a reply with no readable verdict is counted as unparseable, never guessed; a step number past
the end of the solution is counted as invalid.  A judge that stops answering raises after its retries, with
every chunk located so far already saved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stepdpo_bench.samplers import SamplerError, SamplingParams, make_sampler

from .config import PipelineError
from .context import Pipeline, Solution
from .judge_parse import parse_verdicts
from .symbolic import Location

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

_MARKER = re.compile(r"^\s*(?:\*\*)?step\s*\d+\s*[:.)]\s*(?:\*\*)?\s*", re.I)


def judge_prompt(problem: str, reference: str | None, gold: str, pred: str | None, steps: Sequence[str]) -> str:
    solution = "\n".join(f"Step {i}: {_MARKER.sub('', s, count=1)}" for i, s in enumerate(steps, 1))
    return JUDGE_PROMPT.format(
        problem=problem,
        reference=reference or f"(no worked solution; the answer is {gold})",
        gold=gold,
        pred=pred,
        solution=solution,
    )


class Judge:
    def __init__(self, pipe: Pipeline) -> None:
        c = pipe.cfg
        self.pipe = pipe
        self.name = c.judge_model or ""
        self.sampler = make_sampler(
            "openai",
            self.name,
            base_urls=c.judge_base_urls,
            api_key=c.judge_api_key,
            timeout=c.judge_timeout,
            max_retries=c.judge_retries,
        )
        self.params = SamplingParams(temperature=0.0, max_tokens=c.judge_max_tokens, n=1, seed=c.seed)

    def locate(self, sols: Sequence[Solution]) -> list[Location]:
        probs = self.pipe.problems
        msgs = [
            [
                {
                    "role": "user",
                    "content": judge_prompt(
                        probs[s.problem_id].question, probs[s.problem_id].reference, s.gold, s.pred, s.steps
                    ),
                }
            ]
            for s in sols
        ]
        try:
            outs = self.sampler.generate(msgs, self.params)
        except SamplerError as exc:
            raise PipelineError(
                f"judge {self.name!r} failed ({exc}); solutions located so far are saved, rerun "
                "the same command to continue"
            ) from None
        return [read_reply(cs[0].text, len(s.steps)) for s, cs in zip(sols, outs, strict=True)]

    def close(self) -> None:
        self.sampler.close()


def read_reply(reply: str, n_steps: int) -> Location:
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
