"""The pipeline's judge: ask a chat model (GPT-4o in the paper, or a local ``vllm serve``) where a wrong solution
first goes wrong (the prompt and the reply reader are the harness's, ``stepdpo_bench.locators.judge``).

The judge sees the problem, a reference solution (or just the gold answer when the data has none) and the wrong
solution with its steps numbered by us, so the step numbers in its reply are ours.  Replies are read by
``judge_parse``: a reply with no readable verdict is counted as unparseable, never guessed; a step number past
the end of the solution is counted as invalid.  A judge that stops answering raises after its retries, with
every chunk located so far already saved.
"""

from __future__ import annotations

from collections.abc import Sequence

from stepdpo_bench.locators import Location
from stepdpo_bench.locators.judge import judge_prompt, read_reply
from stepdpo_bench.samplers import SamplerError, SamplingParams, make_sampler

from .config import PipelineError
from .context import Pipeline, Solution


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
