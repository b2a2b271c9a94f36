"""Whatever checkpoint a user brings: checked before loading, loaded one way, tokenized one way.

Everything that reads a model (the hf and vllm samplers, the trainer, SFT) goes through here, so the Hub's many
shapes are handled once: ``eos_token_id`` as an int, a list or missing, in ``generation_config.json`` or not;
tokenizers that add BOS themselves and ones that do not; no pad token; learned-position models with a short
context; sharded and bf16 weights; and PEFT LoRA adapter directories, which load as base + adapter.

A broken checkpoint gets one line naming the file (a truncated shard, a missing tokenizer, an adapter whose base
is gone) before any engine starts, instead of a library traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .samplers.base import SamplerError

CONFIG = "config.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "tiktoken.model")
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


class CheckpointError(SamplerError, ValueError):
    """A checkpoint that cannot be used as it is: the message names the file and says what is wrong."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a model comes from.  ``adapter`` is set for a PEFT adapter directory; ``base`` is then its base."""

    name: str  # as the user gave it
    local: bool
    base: str  # the full model: the checkpoint itself, or an adapter's base (path or Hub id)
    adapter: Path | None = None

    @property
    def tokenizer_source(self) -> str:
        """Adapters often ship the tokenizer they were trained with; else the base's is used."""
        if self.adapter is not None and _has_tokenizer(self.adapter):
            return str(self.adapter)
        return self.base


def _has_tokenizer(path: Path) -> bool:
    return any((path / f).is_file() for f in TOKENIZER_FILES)


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def inspect(name: str) -> Checkpoint:
    """Classify and check ``name`` (a directory or a Hub id).  Raises CheckpointError with one line."""
    path = Path(name).expanduser()
    if not path.exists():
        if _looks_local(name) or name.count("/") > 1:
            raise CheckpointError(f"{name}: no such checkpoint directory (and not a Hub id like org/model)")
        return Checkpoint(name, False, name)
    if not path.is_dir():
        raise CheckpointError(f"{name}: not a directory; --model takes a checkpoint directory or a Hub id")
    if (path / ADAPTER_CONFIG).is_file() and not (path / CONFIG).is_file():
        return _inspect_adapter(name, path)
    if not (path / CONFIG).is_file():
        raise CheckpointError(f"{path}: not a checkpoint directory (no {CONFIG} and no {ADAPTER_CONFIG})")
    check_weights(path)
    if not _has_tokenizer(path):
        raise CheckpointError(
            f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}); copy the tokenizer "
            "of the model it was trained from into it"
        )
    return Checkpoint(name, True, str(path))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _inspect_adapter(name: str, path: Path) -> Checkpoint:
    cfg = _read_json(path / ADAPTER_CONFIG)
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"{path / ADAPTER_CONFIG}: no base_model_name_or_path; the adapter's base is unknown")
    if not any(path.glob("adapter_model.*")):
        raise CheckpointError(f"{path}: adapter_config.json but no adapter_model.safetensors / .bin")
    check_weights(path)
    base_path = Path(base).expanduser()
    if not base_path.is_absolute() and (path / base).is_dir():  # a base given relative to the adapter
        base_path = path / base
    if base_path.is_dir():
        inner = inspect(str(base_path))
        if inner.adapter is not None:
            raise CheckpointError(f"{path}: its base {base} is itself an adapter; merge it first")
        return Checkpoint(name, True, inner.base, path)
    if _looks_local(base) or base.count("/") > 1:
        raise CheckpointError(
            f"{path / ADAPTER_CONFIG}: base model {base} not found; put it there or edit base_model_name_or_path"
        )
    return Checkpoint(name, True, base, path)


def check_weights(path: Path) -> None:
    """Every weight file present and whole: safetensors headers are read and sizes checked (cheap, no tensor
    is loaded), shards listed in an index must exist."""
    files = [f for g in WEIGHT_GLOBS for f in sorted(path.glob(g))]
    for index in sorted(path.glob("*.index.json")):
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no weight_map")
        for shard in sorted(set(weight_map.values())):
            if not (path / shard).is_file():
                raise CheckpointError(f"{index}: lists shard {shard}, which is missing")
    if not files and not (path / ADAPTER_CONFIG).is_file():
        raise CheckpointError(f"{path}: no weight files (*.safetensors, *.bin)")
    for f in files:
        if f.suffix == ".safetensors":
            _check_safetensors(f)
        elif f.stat().st_size == 0:
            raise CheckpointError(f"{f}: empty weight file")


def _check_safetensors(f: Path) -> None:
    size = f.stat().st_size
    with f.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{f}: truncated safetensors file ({size} bytes); download or save it again")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000 or 8 + n > size:
            raise CheckpointError(f"{f}: truncated or not a safetensors file (header of {n} bytes, file {size})")
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{f}: corrupt safetensors header") from None
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CheckpointError(
            f"{f}: truncated ({size} bytes, its header needs {8 + n + end}); save or download it again"
        )


# ---- loading -------------------------------------------------------------------------------------------------


def load_tokenizer(ckpt: Checkpoint, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            ckpt.tokenizer_source, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError, KeyError... for bad files
        raise CheckpointError(f"{ckpt.tokenizer_source}: cannot load the tokenizer ({_first_line(exc)})") from None


def load_model(
    ckpt: Checkpoint, dtype: Any = "auto", revision: str | None = None, trust_remote_code: bool = False
) -> Any:
    """The causal LM; an adapter is applied to its base and merged (one plain model for generation and training)."""
    from transformers import AutoModelForCausalLM

    quiet_hf_progress()

    try:
        model = AutoModelForCausalLM.from_pretrained(
            ckpt.base, revision=None if ckpt.adapter else revision, dtype=dtype, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise CheckpointError(f"{ckpt.base}: cannot load the model ({_first_line(exc)})") from None
    if ckpt.adapter is not None:
        try:
            from peft import PeftModel
        except ImportError:
            raise CheckpointError(f"{ckpt.adapter}: a LoRA adapter needs peft: pip install peft") from None
        try:
            model = PeftModel.from_pretrained(model, str(ckpt.adapter)).merge_and_unload()
            model.requires_grad_(True)  # peft froze the base; a merged model trains like any checkpoint
        except Exception as exc:
            raise CheckpointError(
                f"{ckpt.adapter}: cannot apply the adapter to {ckpt.base} ({_first_line(exc)})"
            ) from None
    return model


def quiet_hf_progress() -> None:
    """Our progress bars are the ones on screen: transformers' own ("Loading weights", "Writing model shards")
    would interleave with them."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # an older transformers without the switch: its bars stay
        pass


def merged_copy(ckpt: Checkpoint, cache: Path | None = None) -> Path:
    """An adapter merged into its base, saved once (keyed by content) for engines that need a plain directory."""
    from .samplers.identity import fingerprint_dir

    assert ckpt.adapter is not None
    key = hashlib.sha256((fingerprint_dir(ckpt.adapter) + "|" + _base_key(ckpt)).encode()).hexdigest()[:16]
    root = cache or Path(os.environ.get("STEPDPO_CACHE_DIR") or Path.home() / ".cache" / "stepdpo-bench") / "merged"
    out = root / f"{ckpt.adapter.name}-{key}"
    if (out / "stepdpo_merged.json").is_file():
        return out
    model = load_model(ckpt, dtype="auto")
    tok = load_tokenizer(ckpt)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "stepdpo_merged.json").write_text(json.dumps({"adapter": str(ckpt.adapter), "base": ckpt.base}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _base_key(ckpt: Checkpoint) -> str:
    from .samplers.identity import fingerprint_dir

    p = Path(ckpt.base)
    return fingerprint_dir(p) if p.is_dir() else ckpt.base


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# ---- facts every consumer needs --------------------------------------------------------------------------------


def _as_ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value if v is not None]


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends generation: the tokenizer's eos and the model's (int or list, generation config or
    model config).  Empty when the checkpoint has none (generation then runs to its token budget)."""
    ids = _as_ids(getattr(tokenizer, "eos_token_id", None))
    ids += _as_ids(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    ids += _as_ids(getattr(getattr(model, "config", None), "eos_token_id", None))
    return list(dict.fromkeys(ids))


def pad_id(tokenizer: Any, eos: list[int]) -> int:
    """The id used for padding: the tokenizer's pad, else an eos, else 0 (padded positions are masked anyway)."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return eos[0] if eos else 0


def context_length(config: Any) -> int | None:
    """The model's context window (positions it was built for), when its config says."""
    text = getattr(config, "get_text_config", None)
    cfg = text() if callable(text) else config
    for key in CONTEXT_KEYS:
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """The prompt's ids, as every part of the project sends and scores them.

    The tokenizer's own special prefix (BOS, for Llama/Mistral-style tokenizers) is kept, exactly as the model
    saw it in training and as the Step-DPO reference trainer prepends it; anything it would append (an EOS) is
    not, since the prompt does not end the text.  A prompt that already starts with the BOS text (a chat template
    that writes ``{{ bos_token }}``) does not get a second one.
    """
    plain = tokenizer(text, add_special_tokens=False).input_ids
    full = tokenizer(text, add_special_tokens=True).input_ids
    lead: list[int] = []
    if plain:
        for i in range(len(full) - len(plain) + 1):
            if full[i : i + len(plain)] == plain:
                lead = full[:i]
                break
    else:
        bos = getattr(tokenizer, "bos_token_id", None)
        lead = full[:1] if full and full[0] == bos else []
    if lead and plain[: len(lead)] == lead:
        lead = []
    return lead + plain


def encode_completion(tokenizer: Any, text: str) -> list[int]:
    """A completion's ids: the text alone, no special tokens."""
    return tokenizer(text, add_special_tokens=False).input_ids


GENERATION_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def generation_defaults(name: str, params: Any, revision: str | None = None) -> tuple[Any, list[str]]:
    """``--generation-config model``: the checkpoint's own sampling values (its ``generation_config.json``, an
    adapter's base's when the adapter has none, or the Hub's) applied to ``params``, so they become the run's
    recorded values.  Returns the new params and what was taken (``top_k=20``).  ``do_sample: false`` in the file
    means greedy."""
    from dataclasses import replace

    ckpt = inspect(name)
    data: dict[str, Any] = {}
    for src in ([ckpt.adapter] if ckpt.adapter is not None else []) + [ckpt.base]:
        path = Path(str(src)) / "generation_config.json"
        if path.is_file():
            data = _read_json(path)
            break
    else:
        if not Path(str(ckpt.base)).exists():  # a Hub id (or an adapter's Hub base): ask the Hub
            try:
                from transformers import GenerationConfig

                data = GenerationConfig.from_pretrained(ckpt.base, revision=revision).to_diff_dict()
            except OSError:  # no generation_config.json there either: nothing to take
                data = {}
    taken: dict[str, Any] = {}
    for key in GENERATION_FIELDS:
        value = data.get(key)
        if value is None:
            continue
        taken[key] = int(value) if key == "top_k" else float(value)
    if data.get("do_sample") is False:
        taken["temperature"] = 0.0
    return replace(params, **taken), [f"{k}={v:g}" for k, v in taken.items()]
