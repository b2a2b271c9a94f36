"""A zoo of tiny real checkpoints shaped like the ones users bring from the Hub, built locally (no download).

Our own ``tiny.py`` checkpoint happens to be the friendliest shape there is (eos id 0, pad = eos, ChatML, one
fp32 file); users bring Llama-2 and Mistral tokenizers (sentencepiece-style Metaspace with byte fallback, BOS
added by the tokenizer, no pad), GPT-2 (learned positions, a 1024-token context, ``eos_token_id`` an int),
Qwen (byte-level BPE, an eos *list* in ``generation_config.json``), Phi-3, checkpoints without an eos at all,
bf16 weights in several safetensors shards, templates in ``chat_template.jinja``, and LoRA adapters.  Each
entry below combines several of those traits; together they cover every one named in issue 14.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

INST_TEMPLATE = (  # Mistral-7B-Instruct's shape: [INST] ... [/INST], BOS written by the template
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PHI3_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
LLAMA3_TEMPLATE = (  # Llama-3's shape: the BOS text is part of the template
    "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


@dataclass(frozen=True)
class Entry:
    name: str
    arch: str  # llama | mistral | qwen2 | qwen3 | gpt2 | phi3
    tokenizer: str  # metaspace (sentencepiece-style, byte fallback) | bytelevel (GPT-2 / Qwen BPE)
    adds_bos: bool  # the tokenizer itself prepends BOS when encoding
    pad: str  # present | missing | eos
    eos: str  # int | list | missing
    generation_config: bool
    chat: str  # chatml | inst | phi3 | llama3 | none
    chat_file: str  # tokenizer_config | jinja
    dtype: str  # float32 | bfloat16
    sharded: bool
    tied: bool
    vllm: bool = False  # in the (slow) vLLM subset


ENTRIES = (
    Entry(
        "llama2-spm",
        "llama",
        "metaspace",
        True,
        "missing",
        "int",
        True,
        "none",
        "tokenizer_config",
        "float32",
        False,
        False,
    ),
    Entry(
        "mistral-inst-bf16-sharded",
        "mistral",
        "metaspace",
        True,
        "missing",
        "int",
        True,
        "inst",
        "tokenizer_config",
        "bfloat16",
        True,
        False,
        vllm=True,
    ),
    Entry(
        "qwen2-chatml-eos-list",
        "qwen2",
        "bytelevel",
        False,
        "present",
        "list",
        True,
        "chatml",
        "jinja",
        "float32",
        False,
        True,
    ),
    Entry(
        "qwen3-pad-eq-eos-nogencfg",
        "qwen3",
        "bytelevel",
        False,
        "eos",
        "int",
        False,
        "chatml",
        "tokenizer_config",
        "bfloat16",
        False,
        True,
        vllm=True,
    ),
    Entry(
        "gpt2-1024ctx",
        "gpt2",
        "bytelevel",
        False,
        "missing",
        "int",
        True,
        "none",
        "tokenizer_config",
        "float32",
        False,
        True,
        vllm=True,
    ),
    Entry(
        "phi3-spm-sharded", "phi3", "metaspace", True, "present", "list", True, "phi3", "jinja", "float32", True, False
    ),
    Entry(
        "llama3-noeos-bos",
        "llama",
        "bytelevel",
        True,
        "missing",
        "missing",
        False,
        "llama3",
        "tokenizer_config",
        "float32",
        False,
        True,
    ),
)
ADAPTER = "lora-on-llama2-spm"  # a PEFT LoRA adapter directory over llama2-spm
GPT2_CONTEXT = 1024


def _specials(e: Entry) -> dict[str, str | None]:
    """Special token strings by role, as the model family spells them."""
    if e.tokenizer == "metaspace":
        base = {"bos": "<s>", "eos": "</s>", "unk": "<unk>"}
    elif e.arch == "gpt2":
        base = {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "unk": None}
    elif e.chat == "llama3":
        base = {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "unk": None}
    else:  # Qwen: no BOS at all, eos <|im_end|> for chat models
        base = {"bos": None, "eos": "<|im_end|>", "unk": None}
    if e.eos == "missing":
        base["eos"] = None
    return base


def _extra_tokens(e: Entry) -> list[str]:
    return {
        "chatml": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        "phi3": ["<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"],
        "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "inst": [],
        "none": ["<|endoftext|>"] if e.arch == "gpt2" else [],
    }[e.chat]


def build_tokenizer(e: Entry, corpus: list[str], out: Path, vocab_size: int = 600):
    """Train a tokenizer of the entry's kind and save it the way that family ships it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    sp = _specials(e)
    specials = list(dict.fromkeys([t for t in (sp["unk"], sp["bos"], sp["eos"]) if t] + _extra_tokens(e)))
    if e.tokenizer == "metaspace":
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        tok.train_from_iterator(corpus, trainer=trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
        spec = json.loads(tok.to_str())  # byte-fallback tokens are ordinary vocabulary, as in Llama's tokenizer
        vocab = spec["model"]["vocab"]
        for i in range(256):
            vocab.setdefault(f"<0x{i:02X}>", len(vocab))
        tok = Tokenizer.from_str(json.dumps(spec))
    else:
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(
            corpus,
            trainer=trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
        )
        tok.add_special_tokens(specials)  # appended after the vocabulary, as GPT-2's and Qwen's are (eos never id 0)
    if e.adds_bos:
        bos = sp["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    kw = {k + "_token": v for k, v in sp.items() if v}
    if e.pad == "present":
        kw["pad_token"] = "<unk>" if e.tokenizer == "metaspace" else "<|endoftext|>"
    elif e.pad == "eos":
        kw["pad_token"] = sp["eos"]
    ctx = GPT2_CONTEXT if e.arch == "gpt2" else 4096
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=ctx, **kw)
    template = {"chatml": CHATML_TEMPLATE, "inst": INST_TEMPLATE, "phi3": PHI3_TEMPLATE, "llama3": LLAMA3_TEMPLATE}
    fast.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("backend", None)
    cfg["tokenizer_class"] = {"metaspace": "LlamaTokenizerFast", "bytelevel": "PreTrainedTokenizerFast"}[e.tokenizer]
    if e.arch == "gpt2":
        cfg["tokenizer_class"] = "GPT2TokenizerFast"
    if e.arch in ("qwen2", "qwen3"):
        cfg["tokenizer_class"] = "Qwen2TokenizerFast"
    if e.tokenizer == "metaspace":
        cfg.update(add_bos_token=e.adds_bos, add_eos_token=False)
    if e.chat != "none":
        if e.chat_file == "jinja":
            (out / "chat_template.jinja").write_text(template[e.chat])
        else:
            cfg["chat_template"] = template[e.chat]
    cfg_path.write_text(json.dumps(cfg, indent=2))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(out)


def _model(e: Entry, tok, seed: int):
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    if e.eos == "list":
        ids["eos_token_id"] = [tok.eos_token_id, tok.convert_tokens_to_ids("<|endoftext|>")]
    vocab = len(tok)
    if e.arch == "gpt2":
        cfg = tf.GPT2Config(
            vocab_size=vocab,
            n_positions=GPT2_CONTEXT,
            n_embd=64,
            n_layer=2,
            n_head=2,
            tie_word_embeddings=e.tied,
            initializer_range=0.5,
            **ids,
        )
        return tf.GPT2LMHeadModel(cfg)
    common = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=e.tied,
        initializer_range=0.5,
        **ids,
    )
    if e.arch == "qwen3":
        common["head_dim"] = 32
    config_cls, model_cls = {
        "llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
        "mistral": (tf.MistralConfig, tf.MistralForCausalLM),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
        "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM),
        "phi3": (tf.Phi3Config, tf.Phi3ForCausalLM),
    }[e.arch]
    return model_cls(config_cls(**common))


def build_entry(e: Entry, corpus: list[str], out: Path, seed: int = 0) -> Path:
    """One checkpoint directory, saved with ``save_pretrained`` in the entry's shape."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(e, corpus, out)
    model = _model(e, tok, seed)
    if e.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    gen = model.generation_config
    gen.bos_token_id, gen.pad_token_id = tok.bos_token_id, tok.pad_token_id
    gen.eos_token_id = model.config.eos_token_id
    model.save_pretrained(out, max_shard_size="200KB" if e.sharded else "2GB")
    if not e.generation_config:
        (out / "generation_config.json").unlink(missing_ok=True)
    return out


def build_adapter(base: Path, out: Path, seed: int = 0) -> Path:
    """A PEFT LoRA adapter over ``base`` with non-zero weights (so applying it changes the model), no tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(out)
    return out


def build_zoo(corpus: list[str], root: Path) -> dict[str, Path]:
    zoo = {e.name: build_entry(e, corpus, root / e.name) for e in ENTRIES}
    zoo[ADAPTER] = build_adapter(zoo["llama2-spm"], root / ADAPTER)
    return zoo


def entry(name: str) -> Entry | None:
    return next((e for e in ENTRIES if e.name == name), None)


def long_context_task(tokenizer, path: Path) -> tuple[Path, int]:
    """A jsonl task for a 1024-token model: a short question, one that leaves under 200 tokens of room, and one
    longer than the whole context.  Returns the file and the middle prompt's token count."""
    from stepdpo_bench.checkpoints import encode_prompt

    long_q = "seven plus eight"
    while len(encode_prompt(tokenizer, long_q + " seven plus eight")) < GPT2_CONTEXT - 200:
        long_q += " seven plus eight"
    rows = [
        {"question": "2+3?", "answer": "5"},
        {"question": long_q, "answer": "5"},
        {"question": long_q + " " + long_q, "answer": "5"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path.parent / "plain.txt").write_text("{question}")
    return path, len(encode_prompt(tokenizer, long_q))


def check_clamped_run(samples: list[dict], n_long: int, max_tokens: int) -> None:
    """The invariants of a run on ``long_context_task``: prompts whole, budgets clamped, the too-long one empty."""
    by_id = {s["problem_id"]: s for s in samples}
    short, long, too_long = (by_id[f"long/{i}"] for i in range(3))
    assert short["finish_reason"] in ("stop", "length") and short["n_tokens"] <= max_tokens
    assert long["finish_reason"] in ("context", "stop") and long["n_tokens"] <= GPT2_CONTEXT - n_long
    assert too_long["finish_reason"] == "context" and too_long["completion"] == "" and too_long["n_tokens"] == 0
    assert too_long["prompt"].startswith(long["prompt"])  # the prompt is sent whole, never cut
