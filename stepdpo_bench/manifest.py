"""The run manifest (``run.json``) as typed records: built in one place per producer, read by attribute everywhere.

``Manifest.from_dict`` is the one reader of ``run.json``: it checks the shape (a JSON object, required fields of the
right JSON types) and says which field is wrong, so a truncated or hand-edited manifest gets one line naming the
file and the field, never a ``KeyError`` three modules away.  Fields a record does not know (another version's,
an importer's) are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .tasks.base import json_kind


class ManifestError(ValueError):
    """A manifest whose shape is wrong: the message names the field."""


@dataclass
class ModelInfo:
    name_or_path: str
    revision: str | None = None
    fingerprint: str | None = None
    label: str | None = None
    method: str = "other"  # base | sft | dpo | step-dpo | other
    base_model: str | None = None
    tags: list[str] = field(default_factory=list)  # free-form (--tag main), searchable on the leaderboard
    group: str | None = None  # a recipe's runs across seeds (--group): compared as a group, spread shown
    extra: dict[str, Any] = field(default_factory=dict)
    engine: dict[str, Any] = field(default_factory=dict)  # dtype / context cap when not the defaults

    @property
    def display(self) -> str:
        return self.label or self.name_or_path


@dataclass
class TaskInfo:
    name: str
    split: str = "test"
    n_problems: int | None = None
    data_sha256: str | None = None
    convention: str = "math"
    source: str | None = None
    problems_sha: str | None = None  # hash of the problem ids scored: the problem *set*
    filters: dict[str, Any] = field(default_factory=dict)  # limit / subjects / levels / problem_ids, as asked
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def subset(self) -> bool:
        """Scored on part of the task (a --limit, subject or level filter, an explicit problem list)."""
        return any(v not in (None, [], "") for v in self.filters.values())


@dataclass
class PromptInfo:
    name: str | None = None
    template: str | None = None
    assistant_prefix: str = ""
    chat: bool = False
    fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplingInfo:
    backend: str | None = None
    temperature: float | None = 0.0
    top_p: float | None = 1.0
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = 0
    stop: list[str] = field(default_factory=list)
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraderInfo:
    version: str | None = None
    lenient: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timings:
    wall_s: float = 0.0
    generate_s: float = 0.0
    grade_s: float = 0.0
    tokens_out: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    run_id: str
    model: ModelInfo
    task: TaskInfo
    status: str = "running"  # running | done | failed
    created_at: str | None = None
    updated_at: str | None = None
    source: str = "stepdpo-bench"  # the producer: stepdpo-bench | lm-eval | step-dpo
    prompt: PromptInfo = field(default_factory=PromptInfo)
    sampling: SamplingInfo = field(default_factory=SamplingInfo)
    grader: GraderInfo = field(default_factory=GraderInfo)
    code_version: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)  # what the run id hashes
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    error: str | None = None
    regraded: dict[str, Any] | None = None
    regraded_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # importer fields: metrics_source, disagreements, ...

    @property
    def grader_version(self) -> str | None:
        return self.grader.version

    @property
    def done(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        d = _to_dict(self)
        d["grader_version"] = self.grader.version  # flat copy: the index and older readers look here
        return d

    @classmethod
    def from_dict(cls, data: Any, where: str = "run.json") -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {json_kind(data)}")
        data = dict(data)
        flat_version = data.pop("grader_version", None)
        grader = data.get("grader")
        if grader is None or (isinstance(grader, dict) and grader.get("version") is None):
            data["grader"] = {**(grader or {}), "version": flat_version}
        return _from_dict(cls, data, where)


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra":
            continue
        out[f.name] = _to_dict(value) if dataclasses.is_dataclass(value) else value
    out.update(getattr(obj, "extra", {}))
    return out


_JSON_TYPES: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    dict: (dict,),
    list: (list,),
}


def _check(value: Any, hint: Any, file: str, path: str) -> Any:
    """``value`` against a field's type hint (optional, JSON scalar or container, nested record)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check(value, inner[0], file, path) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, file, path + ".")
    base = origin or hint
    allowed = _JSON_TYPES.get(base)
    if allowed is None:
        return value
    if (isinstance(value, bool) and base in (int, float)) or not isinstance(value, allowed):
        raise ManifestError(f"{file}: field {path!r} should be {base.__name__}, not {type(value).__name__}")
    return value


def _from_dict(cls: Any, data: Any, file: str, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        what = f"field {prefix.rstrip('.')!r} should be an object" if prefix else "expected a JSON object"
        raise ManifestError(f"{file}: {what}, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name == "extra":
            continue
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ManifestError(f"{file}: missing field {prefix + name!r}")
            continue
        if data[name] is None and f.default is not dataclasses.MISSING and f.default is not None:
            continue  # null where a default exists: the default
        kwargs[name] = _check(data[name], hints[name], file, prefix + name)
    if "extra" in known:
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
    return cls(**kwargs)
