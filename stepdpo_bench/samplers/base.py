"""The sampler contract: prompts + sampling params -> n completions per prompt (DESIGN principle 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..prompts import Prompt


class SamplerError(RuntimeError):
    """A backend could not start or answer (missing model, unreachable server): one line, says what to do."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 2048
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()
    top_k: int = 0  # 0: off
    min_p: float = 0.0  # 0: off
    repetition_penalty: float = 1.0  # 1: off

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) | "length" (hit max_tokens) | "context" (hit the model's
    # context window: the budget was clamped below max_tokens so prompt + completion fit; never a cut prompt)
    reasoning: str | None = None  # a thinking trace a server returned in its own field (a reasoning parser)
    reasoning_tokens: int | None = None
    token_ids: tuple[int, ...] | None = None  # the generated ids where the backend has them (a trace's exact
    # length in tokens); never stored


@dataclass
class ModelIdentity:
    """Who generated: enough to tell two checkpoints apart (a weights fingerprint for local directories)."""

    name_or_path: str
    revision: str | None = None
    fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)  # engine settings that change samples (engine_identity)


class Sampler(Protocol):
    backend: str

    def identity(self) -> ModelIdentity: ...

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        keys: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """n completions per prompt; with ``keys`` (one per prompt, the problem id) and ``indices`` (which sample
        numbers), the completions for exactly those samples, each drawn from its own seed ``sample_seed(seed,
        key, j)``: a run with more samples reproduces the first ones of a run with fewer."""
        ...

    def close(self) -> None: ...


def sample_seed(seed: int, key: str, j: int) -> int:
    """The seed of sample ``j`` of the problem ``key`` under the run's ``seed``: fixed by those three alone (not by
    the batch, the chunk or the other samples), so samples 0..K-1 of a K2-sample run are those of a K-sample run."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\x00{key}\x00{j}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string (not included); report whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
