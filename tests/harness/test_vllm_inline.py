"""The vllm backend's start-up policy on a CPU (no engine needed: the policy alone)."""

from __future__ import annotations

import os


def test_the_cpu_engine_core_runs_inline_only_while_built(monkeypatch):
    """On a CPU with one engine, VLLM_ENABLE_V1_MULTIPROCESSING=0 while vLLM builds it (no engine-core and worker
    processes: ~15 s of start-up), then gone, so a server started later is untouched; a user's value, tensor or
    data parallelism, or a GPU leave vLLM's default alone."""
    from stepdpo_bench.samplers import vllm as v

    monkeypatch.delenv(v.INLINE_ENV, raising=False)
    monkeypatch.setattr(v, "_on_cpu", lambda: True)
    with v._engine_env({"tensor_parallel_size": 1}):
        assert os.environ[v.INLINE_ENV] == "0"
    assert v.INLINE_ENV not in os.environ
    for kwargs in ({"tensor_parallel_size": 2}, {"data_parallel_size": 2}):
        with v._engine_env(kwargs):
            assert v.INLINE_ENV not in os.environ
    monkeypatch.setattr(v, "_on_cpu", lambda: False)
    with v._engine_env({}):
        assert v.INLINE_ENV not in os.environ
    monkeypatch.setattr(v, "_on_cpu", lambda: True)
    monkeypatch.setenv(v.INLINE_ENV, "1")
    with v._engine_env({}):
        assert os.environ[v.INLINE_ENV] == "1"
    assert os.environ[v.INLINE_ENV] == "1"
