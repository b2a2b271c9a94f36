"""One set of sampler options for every command that generates (eval, check, watch, pairs).

Each option belongs to the backends that use it; asking for one a backend does not take (``--tp 4 --backend hf``)
is refused with one line instead of being dropped in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .base import SamplerError

BACKENDS = ("vllm", "hf", "openai")
_CLI = {  # option -> its command-line spelling, for messages
    "batch_size": "--batch-size",
    "tp": "--tp",
    "dp": "--dp",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "enforce_eager": "--enforce-eager",
    "max_model_len": "--max-model-len",
    "base_urls": "--base-url",
    "concurrency": "--concurrency",
    "retries": "--retries",
    "revision": "--revision",
    "dtype": "--dtype",
    "trust_remote_code": "--trust-remote-code",
}


@dataclass
class SamplerOptions:
    backend: str | None = None  # None: vllm with a GPU, else hf
    revision: str | None = None  # hf, vllm
    dtype: str = "auto"  # hf, vllm
    trust_remote_code: bool = False  # hf, vllm
    batch_size: int = 16  # hf: prompts per generate() call
    tp: int = 1  # vllm: tensor parallel
    dp: int = 1  # vllm: data parallel
    gpu_memory_utilization: float | None = None  # vllm
    enforce_eager: bool = False  # vllm
    max_model_len: int | None = None  # vllm
    base_urls: list[str] = field(default_factory=list)  # openai
    concurrency: int = 16  # openai
    retries: int = 6  # openai

    USED_BY: ClassVar[dict[str, tuple[str, ...]]] = {
        "revision": ("hf", "vllm"),
        "dtype": ("hf", "vllm"),
        "trust_remote_code": ("hf", "vllm"),
        "batch_size": ("hf",),
        "tp": ("vllm",),
        "dp": ("vllm",),
        "gpu_memory_utilization": ("vllm",),
        "enforce_eager": ("vllm",),
        "max_model_len": ("vllm",),
        "base_urls": ("openai",),
        "concurrency": ("openai",),
        "retries": ("openai",),
    }

    def resolved_backend(self) -> str:
        from . import auto_backend

        backend = self.backend or auto_backend()
        if backend not in BACKENDS:
            raise SamplerError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        return backend

    def check(self) -> str:
        """The backend, after refusing options it does not take and values out of range (one line each)."""
        backend = self.resolved_backend()
        defaults = SamplerOptions()
        for f in fields(self):
            if f.name == "backend":
                continue
            value, default = getattr(self, f.name), getattr(defaults, f.name)
            if value != default and backend not in self.USED_BY[f.name]:
                users = " or ".join(f"--backend {b}" for b in self.USED_BY[f.name])
                raise SamplerError(f"{_CLI[f.name]} is an option of {users}, not of --backend {backend}")
        for name, low in (("batch_size", 1), ("tp", 1), ("dp", 1), ("concurrency", 1), ("retries", 0)):
            if getattr(self, name) < low:
                raise SamplerError(f"{_CLI[name]} must be at least {low}, not {getattr(self, name)}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise SamplerError(f"--gpu-memory-utilization must be in (0, 1], not {self.gpu_memory_utilization}")
        from .identity import DTYPES

        if self.dtype not in DTYPES:
            raise SamplerError(f"--dtype {self.dtype!r}: choose from {', '.join(DTYPES)}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise SamplerError(f"--max-model-len must be at least 1, not {self.max_model_len}")
        if backend == "openai":
            from .openai import check_base_url

            if not self.base_urls:
                raise SamplerError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
            for url in self.base_urls:
                check_base_url(url)
        return backend

    def engine_kwargs(self, seed: int = 0) -> dict[str, Any]:
        """Keyword arguments for ``make_sampler`` on the checked backend."""
        backend = self.resolved_backend()
        if backend == "hf":
            return {
                "revision": self.revision,
                "dtype": self.dtype,
                "batch_size": self.batch_size,
                "trust_remote_code": self.trust_remote_code,
            }
        if backend == "vllm":
            return {
                "revision": self.revision,
                "dtype": self.dtype,
                "tensor_parallel_size": self.tp,
                "data_parallel_size": self.dp,
                "gpu_memory_utilization": self.gpu_memory_utilization,
                "enforce_eager": self.enforce_eager,
                "max_model_len": self.max_model_len,
                "seed": seed,
                "trust_remote_code": self.trust_remote_code,
            }
        return {"base_urls": list(self.base_urls), "concurrency": self.concurrency, "max_retries": self.retries}
