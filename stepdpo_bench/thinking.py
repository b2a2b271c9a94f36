"""Thinking traces: a reasoning model writes ``<think> ... </think>`` (or its template opens the trace for it),
then the answer.  The trace and the answer are stored apart, the answer is graded, and a sample whose trace the
budget cut has no answer at all (finish reason ``thinking``), never one read from inside the trace.

``--thinking auto`` (the default) detects the delimiters from the model's tokenizer: the pair ``<think>`` /
``</think>`` when the tokenizer knows them as tokens or its chat template writes them, and whether the rendered
generation prompt already opened the trace (DeepSeek-R1's distills and QwQ end their generation prompt with
``<think>\\n``; Qwen3 writes its own ``<think>``, and with ``--chat-template-kwargs '{"enable_thinking": false}'``
its template writes an empty closed trace: no trace to split then).  ``--thinking none`` treats the text as
plain; ``--thinking OPEN,CLOSE`` names other delimiters.  A server with a reasoning parser returns the trace in
its own field (``reasoning`` in vLLM 0.32, ``reasoning_content`` in older vLLM and SGLang); the openai backend
reads either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT = ("<think>", "</think>")
THINKING = "thinking"  # the finish reason of a sample cut inside its trace


@dataclass(frozen=True)
class ThinkSpec:
    """The trace delimiters of a run.  ``opened``: the prompt already opened the trace (the completion starts
    inside it)."""

    open: str = DEFAULT[0]
    close: str = DEFAULT[1]
    opened: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.open, "close": self.close, "opened": self.opened}


@dataclass(frozen=True)
class Split:
    reasoning: str | None  # the trace (None: the text has none)
    answer: str | None  # the text after the trace (None: the trace was never closed)


def parse_option(value: str | None) -> str | tuple[str, str]:
    """``auto`` | ``none`` | ``OPEN,CLOSE``; ValueError with what to write otherwise."""
    v = (value or "auto").strip()
    if v in ("auto", "none"):
        return v
    parts = [p.strip() for p in v.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--thinking {value!r}: write auto, none, or the two delimiters as OPEN,CLOSE")
    return parts[0], parts[1]


def detect(option: str | tuple[str, str], tokenizer: Any, rendered_prompt: str | None) -> ThinkSpec | None:
    """The run's spec: from the option, and with ``auto`` from the tokenizer and a rendered prompt."""
    if option == "none":
        return None
    if isinstance(option, tuple):
        open_, close = option
    else:
        open_, close = DEFAULT
        if tokenizer is None or not _knows(tokenizer, open_, close):
            return None
    tail = (rendered_prompt or "").rstrip()
    if isinstance(option, str) and tail.endswith(close):
        return None  # the template wrote an empty, closed trace: thinking is off (Qwen3's enable_thinking false)
    return ThinkSpec(open_, close, tail.endswith(open_))


def _knows(tokenizer: Any, open_: str, close: str) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = " ".join(map(str, template.values()))
    if open_ in template or close in template:
        return True
    vocab = getattr(tokenizer, "get_vocab", None)
    try:
        words = vocab() if vocab is not None else {}
    except Exception:  # a tokenizer that cannot list its vocabulary: nothing to detect
        return False
    return open_ in words and close in words


def single_token_id(tokenizer: Any, text: str) -> int | None:
    """The id of ``text`` when the tokenizer has it as one token (``</think>`` in reasoning models), else None."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except Exception:  # a tokenizer that cannot encode it: count the trace by re-encoding instead
        return None
    return int(ids[0]) if len(ids) == 1 else None


def split(text: str, spec: ThinkSpec | None) -> Split:
    """Trace and answer of one completion under ``spec``."""
    if spec is None:
        return Split(None, text)
    body = text
    if not spec.opened:
        start = body.find(spec.open)
        if start < 0 and spec.close in body:
            start = -len(spec.open)  # a close with no open: a template we could not see opened it (a server's)
        elif start < 0:
            return Split(None, text)  # a model that did not think this time: all answer
        body = body[start + len(spec.open) :]
    end = body.find(spec.close)
    if end < 0:
        return Split(body, None)
    return Split(body[:end], body[end + len(spec.close) :].lstrip("\n"))
