"""Real multi-process training: the ``train`` command under ``torchrun`` (or ``accelerate launch``) with several
processes, against single-process runs of the same global batch.

On this CPU host the processes talk over gloo (accelerate's MULTI_CPU, i.e. DDP).  The process count and the
launcher are parameters (``STEPDPO_TRAIN_PROCS``, default 2; ``STEPDPO_TRAIN_LAUNCHER`` = torchrun | accelerate;
``STEPDPO_TRAIN_ACCELERATE_CONFIG`` = a config file for accelerate launch, e.g. FSDP on a GPU machine), so the
same tests run on a GPU box.  Checked: the epochs and the LR schedule, the loss and reward curves against one
process with the same global batch, a kill mid-epoch with uneven gradient accumulation resuming onto the same
curve, LoRA with the policy as its own reference, and the saved checkpoint loading in ``eval``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench.cli import app

from ..helpers import write_last_step_pairs
from ..servers import free_port

pytest.importorskip("accelerate")
PROCS = int(os.environ.get("STEPDPO_TRAIN_PROCS", "2"))
LAUNCHER = os.environ.get("STEPDPO_TRAIN_LAUNCHER", "torchrun")
CONFIG = os.environ.get("STEPDPO_TRAIN_ACCELERATE_CONFIG")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
runner = CliRunner()
N_PAIRS = 48


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_last_step_pairs(tmp_path_factory.mktemp("dist") / "pairs.jsonl", N_PAIRS)


def _train_args(ckpt: Path, pairs: Path, out: Path, *extra: str) -> list[str]:
    common = ["--lr", "1e-3", "--beta", "0.5", "--prompt", "arith-step", "--seed", "3", "--log-steps", "1"]
    head = ["train", "--method", "step-dpo", "--model", str(ckpt), "--data", str(pairs), "--out", str(out)]
    return [*head, *common, *extra]


def launch_cmd(args: list[str], procs: int = PROCS) -> list[str]:
    if LAUNCHER == "accelerate":
        head = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(procs)]
        head += ["--main_process_port", str(free_port())]
        head += ["--config_file", CONFIG] if CONFIG else (["--cpu"] if not _gpu() else [])
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs)]
        head += ["--master_port", str(free_port())]
    return [*head, "-m", "stepdpo_bench.cli", *args]


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def run_launched(args: list[str], procs: int = PROCS) -> subprocess.CompletedProcess:
    res = subprocess.run(launch_cmd(args, procs), env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


def _eval_args(ckpt: Path) -> list[str]:
    return ["eval", "--model", str(ckpt), "--backend", "hf", "--tasks", "arith", "--limit", "2", "--max-tokens", "8"]


def _log(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if x.strip()]


def _same_curve(a: list[dict], b: list[dict], tol: float) -> None:
    """Same steps, same LR; loss and reward margin within ``tol``; chosen and rejected rewards within 10 x ``tol``
    (their common shift drifts with the order of float sums, amplified by Adam on near-zero gradients, while the
    margin, which the loss sees, stays put).  Accuracy counts signs of margins near 0 at the start, where float
    noise flips them: not compared."""
    assert [x["step"] for x in a] == [x["step"] for x in b]
    for x, y in zip(a, b, strict=True):
        assert y["lr"] == pytest.approx(x["lr"], rel=1e-9), x["step"]
        for key, t in (
            ("loss", tol),
            ("rewards/margins", tol),
            ("rewards/chosen", 10 * tol),
            ("rewards/rejected", 10 * tol),
        ):
            assert y[key] == pytest.approx(x[key], abs=t), (x["step"], key, x[key], y[key])


def test_processes_share_one_schedule_and_one_curve(tiny_ckpt, pairs, tmp_path):
    """N processes with batch 8/N follow the schedule and the curve of one process with batch 8: the same
    pairs per step (each rank its share of one shuffled order), gradients averaged, metrics gathered."""
    global_batch = 8
    if global_batch % PROCS:
        pytest.skip(f"global batch {global_batch} does not split over {PROCS} processes")
    one = tmp_path / "one"
    res = runner.invoke(app, _train_args(tiny_ckpt, pairs, one, "--batch-size", str(global_batch), "--epochs", "2"))
    assert res.exit_code == 0, res.output
    many = tmp_path / "many"
    out = run_launched(_train_args(tiny_ckpt, pairs, many, "--batch-size", str(global_batch // PROCS), "--epochs", "2"))
    assert f"x {PROCS} processes" in out.stderr
    a, b = _log(one), _log(many)
    assert len(a) == len(b) == 2 * N_PAIRS // global_batch  # two epochs, not 2 x PROCS
    assert [x["epoch"] for x in b] == [x["epoch"] for x in a]
    lrs = [x["lr"] for x in b]
    assert max(lrs) == pytest.approx(1e-3, rel=0.05) and lrs[-1] < lrs[len(lrs) // 2] < max(lrs)  # one cosine
    _same_curve(a, b, 1e-3)
    ev = runner.invoke(app, [*_eval_args(many), "--results", str(tmp_path / "r")])
    assert ev.exit_code == 0, ev.output
    tag = json.loads((many / "stepdpo_train.json").read_text())
    assert tag["processes"] == PROCS and tag["steps"] == len(a)


def _kill_after_step(cmd: list[str], log: Path, step: int) -> None:
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if log.is_file() and len([x for x in log.read_text().splitlines() if x.strip()]) >= step:
            time.sleep(random.Random(step).uniform(0, 0.3))
            break
        time.sleep(0.02)
    # the whole job dies at once, as on a lost node: torchrun starts each rank in a session of its own, so killing
    # torchrun's group alone left the ranks running long enough to save one more step (seen once in CI-like runs)
    import psutil

    if proc.poll() is None:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=30)
    proc.wait()


@pytest.mark.parametrize("procs", sorted({1, PROCS}), ids=lambda p: f"{p}proc")
def test_a_kill_mid_epoch_resumes_onto_the_same_curve_with_uneven_accumulation(tiny_ckpt, pairs, tmp_path, procs):
    """12 batches per process per epoch and --grad-accum 5: steps of 5, 5 and 2 batches.  Killed after step 4
    (inside the second epoch) and resumed, the run matches an uninterrupted one step for step."""
    batch = N_PAIRS // (12 * procs)
    args = ["--batch-size", str(batch), "--grad-accum", "5", "--epochs", "2", "--save-steps", "1"]
    ref = tmp_path / "ref"
    run_launched(_train_args(tiny_ckpt, pairs, ref, *args), procs)
    want = _log(ref)
    assert [x["epoch"] for x in want] == [round(b / 12, 4) for b in (5, 10, 12, 17, 22, 24)]  # steps of 5, 5, 2
    out = tmp_path / "killed"
    cmd = launch_cmd(_train_args(tiny_ckpt, pairs, out, *args), procs)
    _kill_after_step(cmd, out / "train_log.jsonl", 4)
    marker = out / "checkpoints" / "last" / "step.json"
    assert marker.is_file(), "no checkpoint before the kill"
    resumed_from = json.loads(marker.read_text())
    assert 3 <= resumed_from["step"] < 6 and resumed_from["done_batches"] > 12
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed at step {resumed_from['step']}" in res.stderr
    _same_curve(want, _log(out), 1e-5)


def test_lora_with_the_policy_as_reference_trains_and_saves_merged(tiny_ckpt, pairs, tmp_path):
    args = ["--lora-r", "8", "--reference", "frozen", "--batch-size", str(8 // PROCS), "--max-steps", "4"]
    out = tmp_path / "lora"
    run_launched(_train_args(tiny_ckpt, pairs, out, *args))
    log = _log(out)
    assert log[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-4)  # adapter off == adapter at its zero init
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()  # merged
    one = tmp_path / "lora-one"
    res = runner.invoke(app, _train_args(tiny_ckpt, pairs, one, *args[:-4], "--batch-size", "8", "--max-steps", "4"))
    assert res.exit_code == 0, res.output
    _same_curve(_log(one), log, 1e-3)
    ev = runner.invoke(app, [*_eval_args(out), "--results", str(tmp_path / "r")])
    assert ev.exit_code == 0, ev.output


def test_sdpo_stages_under_several_processes_follow_one_process(tiny_ckpt, pairs, tmp_path):
    """``train --stages 2`` launched on N processes: every rank cuts the same stages, stage 2 starts from and is
    referenced to stage 1's model, and both stages follow the curves of one process with the same global batch."""
    global_batch = 8
    if global_batch % PROCS:
        pytest.skip(f"global batch {global_batch} does not split over {PROCS} processes")
    one, many = tmp_path / "one", tmp_path / "many"
    args = ("--stages", "2", "--max-steps", "3")
    res = runner.invoke(app, _train_args(tiny_ckpt, pairs, one, *args, "--batch-size", str(global_batch)))
    assert res.exit_code == 0, res.output
    run_launched(_train_args(tiny_ckpt, pairs, many, *args, "--batch-size", str(global_batch // PROCS)))
    tag = json.loads((many / "stepdpo_train.json").read_text())
    assert [s["model"] for s in tag["stages"]] == [str(tiny_ckpt), str(many / "stages" / "stage-1")]
    assert tag["processes"] == PROCS
    for d, tol in (("stages/stage-1", 1e-3), (".", 3e-3)):  # stage 2 starts from stage 1's float drift
        _same_curve(_log(one / d), _log(many / d), tol)
        first = _log(many / d)[0]  # each stage's policy starts as its reference
        assert abs(first["rewards/margins"]) < 1e-4
    ref = json.loads((many / "reference_logps.json").read_text())
    assert ref["model"] == str(many / "stages" / "stage-1")
    flat = lambda rows: [x for r in rows for x in r]  # noqa: E731
    want = flat(json.loads((one / "reference_logps.json").read_text())["logps"])
    assert flat(ref["logps"]) == pytest.approx(want, rel=5e-4)  # stage 1's model, up to the runs' float drift
