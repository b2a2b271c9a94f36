"""The shapes that broke us, one by one: the context window, stop strings a tokenizer's matcher cannot handle,
BOS and tokenization agreement between sampler and trainer, broken checkpoint directories, chat prompts on
models without a chat template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo_bench import checkpoints
from stepdpo_bench.cli import app
from stepdpo_bench.runs import RunDir
from stepdpo_bench.samplers import SamplingParams
from stepdpo_bench.samplers.hf import HFSampler

from .build import ADAPTER, ENTRIES, check_clamped_run, entry, long_context_task

pytestmark = pytest.mark.zoo
runner = CliRunner()


def _only_run(out: Path) -> RunDir:
    (run,) = [RunDir(d) for d in out.iterdir() if (d / "run.json").is_file()]
    return run


def test_prompt_plus_budget_past_gpt2_context_is_clamped_and_recorded(zoo, tmp_path):
    sampler = HFSampler(str(zoo["gpt2-1024ctx"]), batch_size=4)
    f, n_long = long_context_task(sampler.tokenizer, tmp_path / "long.jsonl")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(zoo["gpt2-1024ctx"]),
            "--backend",
            "hf",
            "--tasks",
            f"jsonl:{f}",
            "--prompt-file",
            str(tmp_path / "plain.txt"),
            "--max-tokens",
            "600",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "context window" in res.output  # the warning
    run = _only_run(out)
    check_clamped_run(run.read_samples(), n_long, 600)
    m = run.manifest().metrics
    assert m["context_clamped"] >= 1 and m["truncation_rate"] >= 1 / 3


def test_stop_strings_fall_back_to_decoded_text_when_the_matcher_breaks(zoo, monkeypatch):
    """transformers' matcher raised `substring not found` on a user's Mistral tokenizer; whatever it raises,
    generation must stop at the same place by matching the decoded text."""
    import transformers.generation.stopping_criteria as sc

    sampler = HFSampler(str(zoo["mistral-inst-bf16-sharded"]), batch_size=4, dtype="float32")
    prompts = ["Question: 2 + 3 = ?\nAnswer:", "Question: 9 - 4 = ?\nAnswer:", "Step 1: 3 * 4 = 12\n"]
    texts = [sampler.tokenizer.decode(sampler.encode(p)) for p in prompts]
    free = sampler.generate(prompts, SamplingParams(max_tokens=40))
    stops = []  # stop strings that really occur in the unconstrained completions, so both paths must cut
    for (c,) in free:
        words = c.text.split()
        if len(words) > 3:
            stops.append(words[2])
    assert stops, f"no text to stop on: {free} {texts}"
    params = SamplingParams(max_tokens=40, stop=tuple(stops[:3]))
    matcher = sampler.generate(prompts, params)

    def broken(*a, **kw):
        raise ValueError("substring not found")

    monkeypatch.setattr(sc, "StopStringCriteria", broken)
    sampler._stop_cache.clear()
    fallback = sampler.generate(prompts, params)
    assert [c[0].text for c in fallback] == [c[0].text for c in matcher]
    assert [c[0].n_tokens for c in fallback] == [c[0].n_tokens for c in matcher]
    for (c,), (f,) in zip(fallback, free, strict=True):
        assert not any(s in c.text for s in params.stop)
        assert f.text.startswith(c.text)
        if any(s in f.text for s in params.stop):
            assert c.finish_reason == "stop" and c.n_tokens < f.n_tokens


@pytest.mark.parametrize("name", [e.name for e in ENTRIES] + [ADAPTER])
def test_sampler_and_trainer_send_and_score_the_same_ids(name, zoo):
    from trainer.data import Pair, encode, prompt_text

    path = zoo[name]
    sampler = HFSampler(str(path), batch_size=2)
    tok = sampler.tokenizer
    e = entry(name) or entry("llama2-spm")
    pair = Pair("p", "What is 2 + 3?", "Step 1: 2 + 3 = 5\n", "Step 2: so 5.", "Step 2: so 6.")
    for prompt in ("qwen2-boxed-step", "arith-step", *(("chat",) if e.chat != "none" else ())):
        text = prompt_text(pair, tok, prompt)
        sent = sampler.encode(text)
        (enc,), _ = encode([pair], tok, "step-dpo", prompt, 4096, 512)
        assert enc.prompt == sent, prompt
        bos = tok.bos_token_id
        if e.adds_bos:
            assert sent[0] == bos and sent[1] != bos  # one BOS, even when the chat template writes it
        elif bos is not None:
            assert sent[0] != bos or text.startswith(tok.bos_token)
        assert enc.chosen == checkpoints.encode_completion(tok, pair.chosen)


def _broken(zoo, tmp_path: Path, what: str) -> tuple[Path, str]:
    src = zoo["mistral-inst-bf16-sharded"]
    d = tmp_path / what
    if what == "adapter-base-missing":
        shutil.copytree(zoo[ADAPTER], d)
        cfg = json.loads((d / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = str(tmp_path / "gone" / "base")
        (d / "adapter_config.json").write_text(json.dumps(cfg))
        return d, "not found"
    shutil.copytree(src, d)
    if what == "truncated-shard":
        shard = sorted(d.glob("model-*.safetensors"))[-1]
        shard.write_bytes(shard.read_bytes()[:-100])
        return d, shard.name
    if what == "missing-shard":
        sorted(d.glob("model-*.safetensors"))[0].unlink()
        return d, "missing"
    if what == "no-tokenizer":
        (d / "tokenizer.json").unlink()
        return d, "tokenizer"
    if what == "not-a-checkpoint":
        (d / "config.json").unlink()
        return d, "not a checkpoint"
    raise AssertionError(what)


@pytest.mark.parametrize(
    "what", ["truncated-shard", "missing-shard", "no-tokenizer", "not-a-checkpoint", "adapter-base-missing"]
)
def test_broken_checkpoints_get_one_line_naming_the_file(what, zoo, tmp_path):
    ckpt, needle = _broken(zoo, tmp_path, what)
    for cmd in (
        [
            "eval",
            "--model",
            str(ckpt),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        [
            "train",
            "--method",
            "dpo",
            "--model",
            str(ckpt),
            "--data",
            str(tmp_path / "none.jsonl"),
            "--out",
            str(tmp_path / "t"),
        ],
    ):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 2, res.output
        line = [x for x in res.output.splitlines() if x.startswith("error:")]
        assert len(line) == 1 and needle in line[0] and "Traceback" not in res.output, res.output
        assert str(ckpt.name) in line[0]


def test_chat_prompt_without_a_template_says_which_prompt_to_use(zoo, tmp_path):
    res = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(zoo["gpt2-1024ctx"]),
            "--backend",
            "hf",
            "--tasks",
            "arith",
            "--limit",
            "1",
            "--prompt",
            "chat",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2
    assert "chat template" in res.output and "--prompt" in res.output
