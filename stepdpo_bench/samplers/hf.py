"""``hf`` backend: transformers ``generate``, batched, left-padded, length-sorted, with stop strings and KV cache.

Runs on CPU or GPU.  Sorting prompts by length keeps padding (wasted compute) low; results are put back in the
caller's order.  Sampling is seeded per batch so a resumed run draws the same numbers for the same prompts.

Any checkpoint shape loads (``checkpoints.py``): eos as an int, a list or absent, no pad token, BOS added by the
tokenizer, LoRA adapters merged into their base.  A prompt whose budget would run past the model's context is
given a smaller budget (finish reason ``context``), never cut; stop strings fall back to matching decoded text
when transformers' token-level matcher cannot handle a tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .. import checkpoints
from ..prompts import Prompt
from .base import Completion, ModelIdentity, SamplerError, SamplingParams, sample_seed, truncate_at_stop
from .identity import engine_identity, model_identity


class HFSampler:
    backend = "hf"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int = 16,
        trust_remote_code: bool = False,
    ) -> None:
        try:
            import torch
        except ImportError:
            raise SamplerError("the hf backend needs torch and transformers: pip install 'stepdpo-bench[hf]'") from None
        self._torch = torch
        self.model_name = model
        self.revision = revision
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype, None)
        if torch_dtype is None:
            raise SamplerError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
        self.ckpt = checkpoints.inspect(model)
        self.tokenizer = checkpoints.load_tokenizer(self.ckpt, revision, trust_remote_code)
        self.model = checkpoints.load_model(self.ckpt, torch_dtype, revision, trust_remote_code).to(self.device)
        self.model.eval()
        self.eos = checkpoints.eos_ids(self.model, self.tokenizer)
        self.pad = checkpoints.pad_id(self.tokenizer, self.eos)
        self.context = checkpoints.context_length(self.model.config)
        self._stop_cache: dict[tuple[str, ...], Any] = {}

    def identity(self) -> ModelIdentity:
        return model_identity(self.model_name, self.revision, engine_identity(self.dtype))

    def encode(self, prompt: Prompt) -> list[int]:
        """The ids this sampler sends for ``prompt`` (the trainer scores the same ids: ``encode_prompt``)."""
        text = prompt if isinstance(prompt, str) else self._chat(prompt)
        return checkpoints.encode_prompt(self.tokenizer, text)

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        keys: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """With ``keys`` (sampled runs from eval), each sample number j of a batch is drawn in its own generate
        call seeded by (seed, the batch's first key, j): sample j does not depend on which other samples are drawn
        with it, so a run asked for more samples reproduces the first ones (the batch is the same: chunks are task
        positions and batches are the chunk's prompts by length)."""
        if keys is not None and params.temperature > 0:
            js = list(indices if indices is not None else range(params.n))
            one = replace(params, n=1)
            per_j = [
                self._generate_all(prompts, one, lambda b, idx, j=j: sample_seed(params.seed, keys[idx[0]], j))
                for j in js
            ]
            return [[per_j[k][i][0] for k in range(len(js))] for i in range(len(prompts))]
        return self._generate_all(prompts, params, lambda b, idx: params.seed + b * self.batch_size)

    def _generate_all(self, prompts: Sequence[Prompt], params: SamplingParams, seed_of: Any) -> list[list[Completion]]:
        ids = [self.encode(p) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[list[Completion] | None] = [None] * len(ids)
        budgets = [self._budget(len(x), params.max_tokens) for x in ids]
        for i in order:
            if budgets[i] <= 0:  # the prompt alone fills the context: nothing can be generated
                out[i] = [Completion("", 0, "context") for _ in range(params.n)]
        full = [i for i in order if budgets[i] >= params.max_tokens]
        clamped = [i for i in order if 0 < budgets[i] < params.max_tokens]
        batches = [full[s : s + self.batch_size] for s in range(0, len(full), self.batch_size)]
        batches += [[i] for i in clamped]  # each clamped prompt alone, with its own budget
        for b, idx in enumerate(batches):
            budget = min(budgets[i] for i in idx)
            rows = [ids[i] for i in idx]
            for i, comps in zip(idx, self._generate_batch(rows, params, budget, seed_of(b, idx)), strict=True):
                out[i] = comps
        return [c or [] for c in out]

    def _budget(self, prompt_len: int, max_tokens: int) -> int:
        return max_tokens if self.context is None else min(max_tokens, self.context - prompt_len)

    def _generate_batch(
        self, rows: list[list[int]], params: SamplingParams, budget: int, seed: int
    ) -> list[list[Completion]]:
        torch = self._torch
        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for r, x in enumerate(rows):
            if x:
                input_ids[r, width - len(x) :] = torch.tensor(x)
                attn[r, width - len(x) :] = 1
        torch.manual_seed(seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": budget,
            "num_return_sequences": params.n,
            "pad_token_id": self.pad,
            "eos_token_id": self.eos or None,
            "use_cache": True,
        }
        # every sampling value explicit: the checkpoint's generation_config.json (top_k 20, repetition_penalty
        # 1.05, ...) and transformers' own defaults (top_k 50) never change a run behind its recorded settings
        if params.temperature > 0:
            kwargs.update(
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                min_p=params.min_p,
            )
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        kwargs["repetition_penalty"] = params.repetition_penalty
        if params.stop:
            kwargs["stopping_criteria"] = [self._stop_criteria(tuple(params.stop), width)]
        with torch.inference_mode():
            seqs = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device), **kwargs
            )
        new = seqs[:, width:].tolist()
        limit = "length" if budget >= params.max_tokens else "context"
        return [
            [self._completion(new[r * params.n + j], params.stop, budget, limit) for j in range(params.n)]
            for r in range(len(rows))
        ]

    def _completion(self, toks: list[int], stops: Sequence[str], budget: int, limit: str) -> Completion:
        """Cut a generated row at its first eos or stop string (found in the raw text, so a special-token stop such
        as ``<|im_end|>`` counts); count the tokens kept up to and including the stop."""
        eos = set(self.eos)
        n_tok = next((k for k, t in enumerate(toks) if t in eos), None)
        hit_eos = n_tok is not None
        toks = toks[:n_tok] if hit_eos else toks
        n_tok = len(toks)
        hit_stop = False
        if stops and truncate_at_stop(self._raw(toks), stops)[1]:
            lo, hi = 1, len(toks)  # smallest prefix whose text contains a stop string (monotone in the prefix)
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if truncate_at_stop(self._raw(toks[:mid]), stops)[1] else (mid + 1, hi)
            n_tok, hit_stop = lo, True
        text = truncate_at_stop(self.tokenizer.decode(toks[:n_tok], skip_special_tokens=True), stops)[0]
        finish = "stop" if hit_eos or hit_stop or n_tok < budget else limit
        return Completion(text, n_tok, finish, token_ids=tuple(int(t) for t in toks[:n_tok]))

    def _raw(self, toks: list[int]) -> str:
        return self.tokenizer.decode(toks, skip_special_tokens=False)

    def _stop_criteria(self, stops: tuple[str, ...], prompt_width: int) -> Any:
        """transformers' stop-string matcher when it works for this tokenizer (checked on a probe text),
        else a matcher on the decoded tail of each row."""
        cached = self._stop_cache.get(stops)
        if cached is None:
            cached = self._token_matcher(stops) or _TextStop(self.tokenizer, stops)
            self._stop_cache[stops] = cached
        if isinstance(cached, _TextStop):
            return cached.at(prompt_width)
        return cached

    def _token_matcher(self, stops: tuple[str, ...]) -> Any:
        torch = self._torch
        try:
            from transformers.generation.stopping_criteria import StopStringCriteria

            crit = StopStringCriteria(self.tokenizer, list(stops))
            for s in stops:  # the matcher must fire on text that ends with each stop string
                probe = checkpoints.encode_completion(self.tokenizer, "Step 1: 2 + 3 = 5." + s)
                if not bool(crit(torch.tensor([probe]), None)[0]):
                    return None
            return crit
        except Exception:  # some tokenizers break its token-to-string tables ("substring not found")
            return None

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def _chat(self, messages: list[dict[str, str]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise SamplerError(
                f"model {self.model_name!r} has no chat template; use a text prompt such as --prompt qwen2-boxed"
            )
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


class _TextStop:
    """Stop a row once its decoded new text contains a stop string (window: enough tokens for the longest one,
    byte-fallback tokenizers included)."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...]) -> None:
        self.tokenizer, self.stops = tokenizer, [s for s in stops if s]
        self.window = 4 * max((len(s) for s in self.stops), default=1) + 4
        self.start = 0

    def at(self, prompt_width: int) -> _TextStop:
        bound = _TextStop(self.tokenizer, tuple(self.stops))
        bound.start = prompt_width
        return bound

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tail = input_ids[:, self.start :][:, -self.window :]
        texts = self.tokenizer.batch_decode(tail.tolist(), skip_special_tokens=False)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)
