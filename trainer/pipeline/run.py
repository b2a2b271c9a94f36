"""Running stages and keeping the funnel: how many solutions, errors and pairs survive each stage.

``OUT/funnel.json`` is rewritten after every stage with that stage's counts (earlier stages' counts kept), so
the funnel always describes what is on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from stepdpo_bench.evaluate import progress_bar
from stepdpo_bench.runs import atomic_write_text

from .config import PipelineError
from .context import Pipeline

STAGES = ("collect", "locate", "rectify", "build")  # mining: located
CONTROLLED_STAGES = ("collect", "control", "build")  # mining: step-controlled
ALL_STAGES = ("collect", "locate", "rectify", "control", "build")  # the funnel's order
FUNNEL = "funnel.json"


def stages_for(mining: str) -> tuple[str, ...]:
    return CONTROLLED_STAGES if mining == "step-controlled" else STAGES


def _stage(name: str) -> Callable[..., dict[str, Any]]:
    if name == "collect":
        from .collect import collect

        return lambda pipe, progress: collect(pipe)
    if name == "locate":
        from .locate import locate

        return locate
    if name == "rectify":
        from .rectify import rectify

        return rectify
    if name == "control":
        from .control import control

        return control
    from .build import build

    return lambda pipe, progress: build(pipe)


def run_stages(pipe: Pipeline, stages: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order on one pipeline (one policy sampler for all) and return the whole funnel."""
    own = stages_for(pipe.cfg.mining)
    wrong = [s for s in stages if s not in own]
    if wrong:
        raise PipelineError(
            f"stage {wrong[0]!r} is not part of mining {pipe.cfg.mining!r} (its stages: {', '.join(own)}); "
            "run those, or set mining"
        )
    pipe.check_identity()
    path = pipe.dir / FUNNEL
    funnel: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    try:
        for name in stages:
            with progress_bar(pipe.console) as progress:
                counts = _stage(name)(pipe, progress)
            funnel[name] = counts
            atomic_write_text(path, json.dumps({k: funnel[k] for k in ALL_STAGES if k in funnel}, indent=1))
    finally:
        pipe.close()
    return funnel


def funnel_table(funnel: dict[str, dict[str, Any]], title: str = "Step-DPO pipeline funnel") -> Table:
    t = Table(title=title)
    t.add_column("stage")
    t.add_column("count", overflow="fold")
    t.add_column("n", justify="right")
    for stage in ALL_STAGES:
        for i, (label, n) in enumerate((funnel.get(stage) or {}).items()):
            t.add_row(stage if i == 0 else "", label, f"{n:,}" if isinstance(n, int) else str(n))
    return t


def print_funnel(funnel: dict[str, dict[str, Any]], console: Console) -> None:
    console.print(funnel_table(funnel))
