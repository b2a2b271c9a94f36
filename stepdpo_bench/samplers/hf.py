"""``hf`` backend: transformers ``generate``, batched, left-padded, length-sorted, with stop strings and KV cache.

Runs on CPU or GPU.  Sorting prompts by length keeps padding (wasted compute) low; results are put back in the
caller's order.  Sampling is seeded per batch so a resumed run draws the same numbers for the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..prompts import Prompt
from .base import Completion, ModelIdentity, SamplerError, SamplingParams, truncate_at_stop
from .identity import model_identity


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
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise SamplerError("the hf backend needs torch and transformers: pip install 'stepdpo-bench[hf]'") from None
        self._torch = torch
        self.model_name = model
        self.revision = revision
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype, None)
        if torch_dtype is None:
            raise SamplerError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision, trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                model, revision=revision, dtype=torch_dtype, trust_remote_code=trust_remote_code
            ).to(self.device)
        except (OSError, ValueError) as exc:
            raise SamplerError(f"cannot load model {model!r}: {str(exc).splitlines()[0][:200]}") from None
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def identity(self) -> ModelIdentity:
        return model_identity(self.model_name, self.revision)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        torch = self._torch
        texts = [p if isinstance(p, str) else self._chat(p) for p in prompts]
        lengths = [len(self.tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out: list[list[Completion] | None] = [None] * len(texts)
        eos = {self.tokenizer.eos_token_id, *(getattr(self.model.generation_config, "eos_token_id", None) or [])}
        eos.discard(None)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            torch.manual_seed(params.seed + start)
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_tokens,
                "num_return_sequences": params.n,
                "pad_token_id": self.tokenizer.pad_token_id,
                "use_cache": True,
            }
            if params.temperature > 0:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if params.stop:
                kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
            with torch.inference_mode():
                seqs = self.model.generate(**enc, **kwargs)
            new = seqs[:, enc["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                comps = []
                for j in range(params.n):
                    ids = new[row * params.n + j].tolist()
                    n_tok, hit_eos = len(ids), False
                    for k, t in enumerate(ids):
                        if t in eos:
                            n_tok, hit_eos = k, True
                            break
                    text = self.tokenizer.decode(ids[:n_tok], skip_special_tokens=True)
                    text, hit_stop = truncate_at_stop(text, params.stop)
                    if hit_stop:  # count only the tokens the kept text needs
                        n_tok = min(n_tok, len(self.tokenizer(text, add_special_tokens=False).input_ids) + 1)
                    finish = "stop" if hit_eos or hit_stop or n_tok < params.max_tokens else "length"
                    comps.append(Completion(text, n_tok, finish))
                out[i] = comps
        return [c or [] for c in out]

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def _chat(self, messages: list[dict[str, str]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise SamplerError(f"model {self.model_name!r} has no chat template; use a text prompt")
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
