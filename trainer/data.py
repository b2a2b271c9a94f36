"""Preference pairs in, token ids out: the Step-DPO tokenization done right.

Pairs use the public ``xinlai/Math-Step-DPO-10K`` fields: ``prompt`` (the problem), ``initial_reason_steps``
(the correct steps before the one being judged), ``chosen`` / ``rejected`` (one step each for Step-DPO; whole
solutions for DPO).

- The prompt is rendered with the harness's own template (one source of truth), or the tokenizer's chat template,
  and the earlier steps go *inside* the assistant turn, right where the model would have written them.
- Step-DPO completions get no EOS (a single step is not the end of the answer); DPO's full solutions do.
- Prompt and completion are tokenised separately and concatenated, so no token straddles the boundary; the
  prompt's ids are exactly the ones the samplers send (``checkpoints.encode_prompt``: BOS where the tokenizer
  adds one, as the Step-DPO reference trainer prepends it).
- Too long: the prompt is cut from the left (after its BOS), never the completion; a completion longer than its
  budget is dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepdpo_bench.checkpoints import encode_completion, encode_prompt
from stepdpo_bench.prompts import get_template, response_head
from stepdpo_bench.tasks.base import json_kind

METHODS = ("step-dpo", "dpo")


class PairsError(ValueError):
    """A pairs file the trainer cannot use: one line naming the record and field."""


@dataclass(frozen=True)
class Pair:
    id: str
    prompt: str
    initial_reason_steps: str
    chosen: str
    rejected: str


@dataclass
class Encoded:
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


def read_pair_records(source: str) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """Raw records (with where each came from) of a local JSONL/JSON file or a Hub dataset id, and a checksum."""
    path = Path(source)
    records: list[tuple[str, dict[str, Any]]] = []
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        if text.lstrip().startswith("["):
            records = [(f"{path}: record {i}", r) for i, r in enumerate(json.loads(text))]
        else:
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append((f"{path}:{lineno}", json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise PairsError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    else:
        try:
            import datasets

            ds = datasets.load_dataset(source, split="train")
        except Exception as exc:
            raise PairsError(f"{source}: not a file and not loadable from the Hub ({type(exc).__name__})") from None
        rows = [dict(r) for r in ds]
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
        records = [(f"{source}[{i}]", r) for i, r in enumerate(rows)]
    for where, r in records:
        if not isinstance(r, dict):
            raise PairsError(f"{where}: expected a JSON object, got {json_kind(r)}")
    return records, digest


def load_pairs(source: str, method: str) -> tuple[list[Pair], str]:
    """Pairs from a local JSONL/JSON file or a Hub dataset id; returns them with a checksum of the data."""
    records, digest = read_pair_records(source)
    pairs = []
    for where, r in records:
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise PairsError(f"{where}: field {key!r} is missing or empty")
        steps = r.get("initial_reason_steps") or ""
        if not isinstance(steps, str):
            raise PairsError(f"{where}: field 'initial_reason_steps' must be text")
        pairs.append(
            Pair(str(r.get("problem_id") or r.get("id") or where), r["prompt"], steps, r["chosen"], r["rejected"])
        )
    if not pairs:
        raise PairsError(f"{source}: no pairs")
    return pairs, digest


def prompt_text(pair: Pair, tokenizer: Any, prompt: str) -> str:
    """Problem in the harness template (or the chat template), then the earlier steps inside the answer."""
    template = get_template(prompt)
    if template.chat:
        if not getattr(tokenizer, "chat_template", None):
            raise PairsError(
                f"prompt {prompt!r} needs a chat template and the tokenizer has none; use a text "
                "prompt: --prompt qwen2-boxed (or deepseek-math, alpaca)"
            )
        head = tokenizer.apply_chat_template(
            [{"role": "user", "content": template.template.format(question=pair.prompt)}],
            tokenize=False,
            add_generation_prompt=True,
        )
    else:
        head = template.template.format(question=pair.prompt)
    return response_head(template, head, pair.initial_reason_steps or pair.chosen) + pair.initial_reason_steps


def encode(
    pairs: list[Pair],
    tokenizer: Any,
    method: str,
    prompt: str,
    max_length: int,
    max_completion_length: int,
    eos_id: int | None = None,
) -> tuple[list[Encoded], int]:
    """Token ids for every pair, and how many were dropped for an over-long completion.  ``eos_id`` ends DPO's
    full solutions (default: the tokenizer's eos; a checkpoint may have none)."""
    if method not in METHODS:
        raise PairsError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    eos_id = tokenizer.eos_token_id if eos_id is None else eos_id
    eos = [eos_id] if method == "dpo" and eos_id is not None else []
    bos = getattr(tokenizer, "bos_token_id", None)
    out, dropped = [], 0
    for p in pairs:
        ids_p = encode_prompt(tokenizer, prompt_text(p, tokenizer, prompt))
        ids_c = encode_completion(tokenizer, p.chosen) + eos
        ids_r = encode_completion(tokenizer, p.rejected) + eos
        longest = max(len(ids_c), len(ids_r))
        if longest > max_completion_length or longest >= max_length:
            dropped += 1
            continue
        budget = max_length - longest
        lead = 1 if ids_p and bos is not None and ids_p[0] == bos and budget > 1 else 0
        out.append(Encoded(ids_p[:lead] + ids_p[lead:][-(budget - lead) :], ids_c, ids_r))  # left-truncate
    return out, dropped
