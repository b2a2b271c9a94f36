"""``openai`` backend: any OpenAI-compatible server (``vllm serve``, SGLang, TGI, OpenAI itself).

Completions endpoint for text prompts, chat endpoint for chat messages.  Requests run with bounded concurrency,
round-robin over one or more base URLs (a fleet), and retry with exponential backoff on 429, 5xx, timeouts and
dropped connections.  ``n`` samples are ``n`` requests with seeds ``seed + i``, so each completion's token count
is exact and a resumed run asks for exactly the samples it is missing.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..prompts import Prompt
from .base import Completion, ModelIdentity, SamplerError, SamplingParams, sample_seed

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def check_base_url(url: str) -> None:
    """A server URL must be http(s)://host[:port]/...: refused at once, not after the retries run out."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SamplerError(f"--base-url {url!r} is not an http(s) URL; expected e.g. http://127.0.0.1:8000/v1")


class OpenAISampler:
    backend = "openai"

    def __init__(
        self,
        model: str,
        base_urls: Sequence[str],
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        max_retries: int = 6,
        timeout: float = 600.0,
        backoff: float = 1.0,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise SamplerError("the openai backend needs httpx: pip install 'stepdpo-bench[openai]'") from None
        if not base_urls:
            raise SamplerError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        for url in base_urls:
            check_base_url(url)
        self._httpx = httpx
        self.model_name = model
        self.chat_template_kwargs: dict[str, Any] = {}  # sent with chat requests (vLLM, SGLang: enable_thinking)
        self.base_urls = [u.rstrip("/") for u in base_urls]
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self._rr = itertools.cycle(range(len(self.base_urls)))
        self._rr_lock = threading.Lock()

    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.model_name, None, None, {"served": True})

    def _next_url(self) -> str:
        with self._rr_lock:
            return self.base_urls[next(self._rr)]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.max_retries + 1):
            url = self._next_url() + path
            try:
                r = self.client.post(url, json=body)
            except (self._httpx.TransportError, self._httpx.TimeoutException) as exc:
                last = f"{url}: {type(exc).__name__} {exc}"
            else:
                if r.status_code == 200:
                    return r.json()
                last = f"{url}: HTTP {r.status_code} {r.text[:200]}"
                if r.status_code not in RETRY_STATUS:
                    raise SamplerError(f"server refused the request: {last}")
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise SamplerError(f"no answer after {self.max_retries + 1} attempts; is the server up? last error: {last}")

    def _one(self, prompt: Prompt, params: SamplingParams, seed: int) -> Completion:
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": seed,
            # vLLM's and SGLang's extra sampling fields, always sent: a server left to its defaults applies the
            # model's generation_config (vLLM's --generation-config auto) behind the run's recorded settings
            "top_k": params.top_k if params.top_k > 0 else -1,  # -1: off for every vLLM and SGLang version
            "min_p": params.min_p,
            "repetition_penalty": params.repetition_penalty,
        }
        if params.stop:
            body["stop"] = list(params.stop)  # all of them: a server that takes fewer refuses, none is dropped
        if isinstance(prompt, str):
            res = self._post("/completions", {**body, "prompt": prompt})
            choice = res["choices"][0]
            text = choice.get("text") or ""
        else:
            extra = {"chat_template_kwargs": self.chat_template_kwargs} if self.chat_template_kwargs else {}
            res = self._post("/chat/completions", {**body, "messages": prompt, **extra})
            choice = res["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
        usage = res.get("usage") or {}
        n_tokens = int(usage.get("completion_tokens") or 0)
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        # a reasoning parser's trace: "reasoning" (vLLM 0.32), "reasoning_content" (older vLLM, SGLang)
        where = choice.get("message") or choice
        trace = where.get("reasoning") if where.get("reasoning") is not None else where.get("reasoning_content")
        details = usage.get("completion_tokens_details") or {}
        trace_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if trace_tokens is not None and int(trace_tokens) == 0 and (trace or "").strip():
            # vLLM 0.32 counts only tokens after a <think> the model wrote itself: 0 when the template opened the
            # trace.  A 0 beside a non-empty trace is not a count (evaluate counts a cut trace as every token)
            trace_tokens = None
        return Completion(text, n_tokens, finish, trace, None if trace_tokens is None else int(trace_tokens))

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        keys: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        js = list(indices) if indices is not None else list(range(params.n))
        jobs = [(i, j) for i in range(len(prompts)) for j in js]

        def seed(i: int, j: int) -> int:
            return sample_seed(params.seed, keys[i], j) if keys is not None else params.seed + j

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            results = list(pool.map(lambda ij: self._one(prompts[ij[0]], params, seed(*ij)), jobs))
        out: list[list[Completion]] = [[] for _ in prompts]
        for (i, _), c in zip(jobs, results, strict=True):
            out[i].append(c)
        return out

    def close(self) -> None:
        self.client.close()
