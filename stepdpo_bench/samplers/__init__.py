"""Samplers: one call from prompts to completions, behind three backends (vllm, hf, openai)."""

from __future__ import annotations

from typing import Any

from .base import Completion, ModelIdentity, Sampler, SamplerError, SamplingParams

__all__ = [
    "BACKENDS",
    "Completion",
    "ModelIdentity",
    "Sampler",
    "SamplerError",
    "SamplingParams",
    "auto_backend",
    "make_sampler",
]

BACKENDS = ("vllm", "hf", "openai")


def auto_backend() -> str:
    """vllm when it is importable and a GPU is present, else hf."""
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    if gpu:
        try:
            import vllm  # noqa: F401

            return "vllm"
        except ImportError:
            pass
    return "hf"


def make_sampler(backend: str, model: str, **kwargs: Any) -> Sampler:
    """Build a sampler; keyword arguments the chosen backend does not take are dropped."""
    if backend == "hf":
        from .hf import HFSampler

        keys = {"revision", "dtype", "device", "batch_size", "trust_remote_code"}
        return HFSampler(model, **{k: v for k, v in kwargs.items() if k in keys and v is not None})
    if backend == "vllm":
        from .vllm import VLLMSampler

        keys = {
            "revision",
            "dtype",
            "tensor_parallel_size",
            "data_parallel_size",
            "gpu_memory_utilization",
            "seed",
            "enforce_eager",
            "max_model_len",
            "trust_remote_code",
        }
        return VLLMSampler(model, **{k: v for k, v in kwargs.items() if k in keys and v is not None})
    if backend == "openai":
        from .openai import OpenAISampler

        keys = {"api_key", "concurrency", "max_retries", "timeout"}
        return OpenAISampler(
            model, kwargs.get("base_urls") or [], **{k: v for k, v in kwargs.items() if k in keys and v is not None}
        )
    raise SamplerError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
