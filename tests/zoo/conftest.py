"""The zoo is built once per test session (about 12 s) under a temp dir and shared by every zoo test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo(tmp_path_factory, shared_data) -> dict[str, Path]:
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from ..conftest import _corpus
    from .build import build_zoo

    return build_zoo(_corpus(shared_data), tmp_path_factory.mktemp("zoo"))
