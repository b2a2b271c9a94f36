"""Model identity for run ids: a Hub id + revision, or a fingerprint of a local checkpoint's files.

The fingerprint hashes config.json, tokenizer files and, for each weight file, its name, size and first and last
MiB: cheap on 100 GB checkpoints, yet any retrained or re-saved checkpoint gets a new identity.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .base import ModelIdentity

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")
_SMALL = (  # everything that changes what a prompt renders to or how the model decodes
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "adapter_config.json",
)
_CHUNK = 1 << 20


def fingerprint_dir(path: Path) -> str:
    h = hashlib.sha256()
    for name in _SMALL:
        f = path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    for pattern in _WEIGHTS:
        for f in sorted(path.glob(pattern)):
            size = f.stat().st_size
            h.update(f.name.encode() + b"\0" + str(size).encode())
            with f.open("rb") as fh:
                h.update(fh.read(_CHUNK))
                if size > 2 * _CHUNK:
                    fh.seek(-_CHUNK, 2)
                    h.update(fh.read(_CHUNK))
    return h.hexdigest()[:16]


def is_local(model: str) -> bool:
    return Path(model).expanduser().exists() or model.startswith((".", "/", "~"))


DTYPES = ("auto", "float32", "bfloat16", "float16")


def engine_identity(dtype: str = "auto", max_model_len: int | None = None) -> dict[str, Any]:
    """The engine settings that change what a model generates, for the run id: the weights' precision and a context
    cap (which clamps generation budgets).  Defaults are left out, so runs made before this was recorded keep their
    ids.  Batch size, parallelism, memory and eager mode are execution choices: the same samples up to float noise."""
    out: dict[str, Any] = {}
    if dtype != "auto":
        out["dtype"] = dtype
    if max_model_len is not None:
        out["max_model_len"] = max_model_len
    return out


def model_identity(model: str, revision: str | None = None, engine: dict[str, Any] | None = None) -> ModelIdentity:
    """Hub id + revision, or a local checkpoint's fingerprint; a LoRA adapter is base + adapter (both hashed)."""
    who = _who(model, revision)
    who.engine = dict(engine or {})
    return who


def _who(model: str, revision: str | None) -> ModelIdentity:
    p = Path(model).expanduser()
    if p.is_dir():
        fp = fingerprint_dir(p)
        extra = {}
        if (p / "adapter_config.json").is_file() and not (p / "config.json").is_file():
            from ..checkpoints import inspect

            base = inspect(model).base
            base_fp = fingerprint_dir(Path(base)) if Path(base).is_dir() else f"{base}@{revision or 'main'}"
            fp = hashlib.sha256(f"{fp}|{base_fp}".encode()).hexdigest()[:16]
            extra = {"adapter": str(p.resolve()), "base": base}
        return ModelIdentity(str(p.resolve()), revision, fp, extra)
    return ModelIdentity(model, revision or "main")
