"""What every stage shares: the pipeline directory, the training problems, the prompt, and one policy sampler.

The policy model is loaded once and serves collect, rollout and rectify.  Prefix prompts are built here, once:
a continuation after ``k`` correct steps is the problem's prompt with those steps inside the answer, exactly as
the trainer will tokenize it (``response_head``), so what the pipeline samples and what Step-DPO trains on agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from stepdpo_bench.prompts import PromptTemplate, get_template, render, response_head
from stepdpo_bench.runs import atomic_write_text
from stepdpo_bench.samplers import Sampler, SamplingParams, sampler_from_options
from stepdpo_bench.tasks import Problem, Task, load_task

from .config import PipelineConfig, PipelineError

T = TypeVar("T")

# settings that change what was sampled: a pipeline directory is tied to them
IDENTITY_KEYS = (
    "model",
    "task",
    "split",
    "data_dir",
    "limit",
    "task_seed",
    "prompt",
    "k",
    "temperature",
    "rectify_temperature",
    "top_p",
    "max_tokens",
    "seed",
    # step-controlled mining: what its continuations were asked for (older directories lack these keys)
    "control_steps",
    "control_temperatures",
    "control_tries",
    "control_per_problem",
)
STEP_PROMPTS = {"arith": "arith-step"}


@dataclass
class Solution:
    """One sampled solution, split into steps (the template's opening included, so step 1 reads ``Step 1: ...``)."""

    key: str  # problem_id#sample_idx
    problem_id: str
    sample_idx: int
    steps: list[str]
    pred: str | None
    gold: str
    correct: bool


class Pipeline:
    def __init__(self, cfg: PipelineConfig, console: Console | None = None) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.out)
        self.console = console or Console(stderr=True)
        self._policy: Sampler | None = None
        self._solutions: list[Solution] | None = None  # read once per process, after collect finished

    # ---- identity: one directory, one sampling setup
    def check_identity(self) -> None:
        """Refuse to mix outputs of different policies or problems in one directory."""
        now = {k: getattr(self.cfg, k) for k in IDENTITY_KEYS}
        path = self.dir / "config.json"
        if path.is_file():
            old = json.loads(path.read_text()).get("identity", {})
            diff = [k for k in IDENTITY_KEYS if k in old and old[k] != now[k]]
            if diff:
                k = diff[0]
                raise PipelineError(
                    f"{path}: this pipeline was built with {k}={old[k]!r}, not {now[k]!r}; "
                    "use a new --out directory (or restore the setting)"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"identity": now, "config": asdict(self.cfg)}, indent=1, default=str))

    # ---- problems and prompts
    @cached_property
    def task(self) -> Task:
        c = self.cfg
        data_dir = Path(c.data_dir) if c.data_dir else None
        task = load_task(
            c.task,
            data_dir,
            c.split,
            seed=c.task_seed,
            question_field=c.question_field,
            answer_field=c.answer_field,
            convention=c.convention,
        )
        return task.filtered(c.limit)

    @cached_property
    def problems(self) -> dict[str, Problem]:
        return {p.id: p for p in self.task.problems}

    @property
    def prompt_name(self) -> str:
        return self.cfg.prompt or STEP_PROMPTS.get(self.task.convention, "qwen2-boxed-step")

    @cached_property
    def template(self) -> PromptTemplate:
        return get_template(self.prompt_name)

    def head(self, problem: Problem) -> str:
        if not self.template.chat:
            return render(self.template, problem)
        get = getattr(self.policy, "get_tokenizer", None)
        return render(self.template, problem, get() if get else None)

    def prefix_prompt(self, problem: Problem, steps_before: list[str]) -> tuple[str, str]:
        """(prompt, opening): the prompt to continue after ``steps_before``, and the text that the template put
        in the answer already, to be put back in front of each continuation before it is split into steps."""
        head = self.head(problem)
        if not steps_before:
            return head, self.template.assistant_prefix
        before = initial_text(steps_before)
        return response_head(self.template, head, before) + before, ""

    def sampling(self, n: int, temperature: float | None = None, seed: int | None = None) -> SamplingParams:
        c = self.cfg
        return SamplingParams(
            temperature=c.temperature if temperature is None else temperature,
            top_p=c.top_p,
            max_tokens=c.max_tokens,
            n=n,
            seed=c.seed if seed is None else seed,
            stop=self.template.stop,
        )

    # ---- the policy sampler, loaded on first use
    @property
    def policy(self) -> Sampler:
        if self._policy is None:
            self._policy = sampler_from_options(self.cfg.model, self.cfg.sampler_options(), seed=self.cfg.seed)
        return self._policy

    def close(self) -> None:
        if self._policy is not None:
            self._policy.close()
            self._policy = None

    # ---- collect's output, as solutions
    def collected_run(self) -> Path:
        ptr = self.dir / "collect.json"
        if not ptr.is_file():
            raise PipelineError(f"{self.dir}: no collected solutions yet; run `stepdpo-bench pairs collect` first")
        return self.dir / "collect" / json.loads(ptr.read_text())["run_id"]

    def solutions(self) -> list[Solution]:
        from stepdpo_bench.runs import RunDir

        if self._solutions is not None:
            return self._solutions
        run = RunDir(self.collected_run())
        order = {pid: i for i, pid in enumerate(self.problems)}
        out = []
        samples = sorted(run.read_samples(), key=lambda s: (order.get(s["problem_id"], len(order)), s["sample_idx"]))
        for s in samples:
            out.append(
                Solution(
                    f"{s['problem_id']}#{s['sample_idx']}",
                    s["problem_id"],
                    int(s["sample_idx"]),
                    list(s["steps"]),
                    s.get("pred"),
                    s["gold"],
                    bool(s["correct"]),
                )
            )
        self._solutions = out
        return out

    def wrong_solutions(self) -> list[Solution]:
        """Graded wrong, with an answer to be wrong about and at least one step (no answer: nothing to locate)."""
        return [s for s in self.solutions() if not s.correct and s.pred is not None and s.steps]


def aligned_chunks(items: Sequence[T], size: int, done: Callable[[T], bool]) -> Iterator[list[T]]:
    """The chunks an uninterrupted run would process (boundaries fixed by position in ``items``), skipping those
    already complete.  A resumed stage therefore samples each chunk with the same batch, seeds and draws as a run
    that was never killed; the caller writes only the items not yet done."""
    for start in range(0, len(items), size):
        chunk = list(items[start : start + size])
        if not all(done(x) for x in chunk):
            yield chunk


def initial_text(steps_before: list[str]) -> str:
    """The ``initial_reason_steps`` text: the correct steps before the judged one, one per line."""
    return "".join(s + "\n" for s in steps_before)
