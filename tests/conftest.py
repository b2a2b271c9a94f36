"""Shared test setup: offline by construction, data read from ../shared/data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("STEPDPO_CACHE_DIR", tempfile.mkdtemp(prefix="stepdpo-cache-"))  # merged adapters etc.

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STEPDPO_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: tests read the evaluation data from ../shared/data")
    return SHARED_DATA


def _corpus(data: Path) -> list[str]:
    """Text to train the tiny tokenizer on: real questions (so prompts tokenize sensibly) plus arith problems."""
    import json

    from stepdpo_bench.tasks import arith

    lines = []
    for rel, key in (("gsm8k/test.jsonl", "question"), ("math500/test.jsonl", "problem")):
        with (data / rel).open(encoding="utf-8") as f:
            lines += [json.loads(x)[key] for x in f][:400]
    lines += [p.question + "\n" + (p.reference or "") for p in arith.generate("train", 300).problems]
    return lines


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, shared_data) -> Path:
    """A real (random-weights) Qwen2 checkpoint with a chat template, built once per session."""
    pytest.importorskip("transformers")
    from stepdpo_bench.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-qwen2", _corpus(shared_data))


@pytest.fixture(scope="session")
def tiny_thinking_ckpt(tmp_path_factory, shared_data) -> Path:
    """A reasoning model's shape: <think> and </think> are tokens, the chat template opens the trace."""
    pytest.importorskip("transformers")
    from stepdpo_bench.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "tiny-thinking", _corpus(shared_data), thinking=True, seed=3
    )


@pytest.fixture(scope="session")
def tiny_ckpt_nochat(tmp_path_factory, shared_data) -> Path:
    pytest.importorskip("transformers")
    from stepdpo_bench.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "tiny-llama-nochat", _corpus(shared_data), arch="llama", chat_template=False
    )


for _k, _v in {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def arith_policy(tmp_path_factory) -> Path:
    """A tiny model fine-tuned on arith (the demo's smoke-size SFT): writes ``Step k:`` solutions with errors."""
    pytest.importorskip("transformers")
    from rich.console import Console

    from trainer.demo import SMOKE, DemoConfig, build_policy

    return build_policy(DemoConfig(out=str(tmp_path_factory.mktemp("policy")), **SMOKE), Console(stderr=True))


# a policy that is right about half the time: SCDPO corrupts correct solutions, so it needs true ones
GOOD = dict(sft_steps=900, sft_target_loss=0.1, sft_cooldown=50)


@pytest.fixture(scope="session")
def arith_policy_good(tmp_path_factory) -> Path:
    """The smoke-size model trained by loss to a level where many of its solutions are truly right."""
    pytest.importorskip("transformers")
    from rich.console import Console

    from trainer.demo import SMOKE, DemoConfig, build_policy

    cfg = DemoConfig(out=str(tmp_path_factory.mktemp("policy-good")), **{**SMOKE, **GOOD})
    return build_policy(cfg, Console(stderr=True))
