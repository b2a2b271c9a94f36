"""Samplers: one call from prompts to completions, behind three backends (vllm, hf, openai)."""

from __future__ import annotations

from typing import Any

from .base import Completion, ModelIdentity, Sampler, SamplerError, SamplingParams
from .options import BACKENDS, SamplerOptions

__all__ = [
    "BACKENDS",
    "Completion",
    "ModelIdentity",
    "Sampler",
    "SamplerError",
    "SamplerOptions",
    "SamplingParams",
    "auto_backend",
    "identity_for",
    "make_sampler",
    "sampler_from_options",
]


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
    """Build a sampler.  ``kwargs`` are the backend's own (``SamplerOptions.engine_kwargs`` makes them, after
    refusing options the backend does not take); None values are left to the backend's defaults."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if backend == "hf":
        from .hf import HFSampler

        return HFSampler(model, **kwargs)
    if backend == "vllm":
        from .vllm import VLLMSampler

        return VLLMSampler(model, **kwargs)
    if backend == "openai":
        from .openai import OpenAISampler

        return OpenAISampler(model, kwargs.pop("base_urls", None) or [], **kwargs)
    raise SamplerError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def identity_for(backend: str, model: str, opts: SamplerOptions | None = None) -> ModelIdentity:
    """Who will generate, known before any model loads (so a run can be planned and locked first); the same
    identity the built sampler reports."""
    if backend == "openai":
        return ModelIdentity(model, None, None, {"served": True})
    from .identity import engine_identity, model_identity

    opts = opts or SamplerOptions()
    cap = opts.max_model_len if backend == "vllm" else None
    return model_identity(model, opts.revision, engine_identity(opts.dtype, cap))


def sampler_from_options(model: str, opts: SamplerOptions, seed: int = 0) -> Sampler:
    """Check the options against the backend, then build the sampler."""
    backend = opts.check()
    return make_sampler(backend, model, **opts.engine_kwargs(seed))
