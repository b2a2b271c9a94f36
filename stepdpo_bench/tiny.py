"""Build a tiny but real Hugging Face checkpoint from scratch: a BPE tokenizer trained with ``tokenizers`` and a
randomly initialised Qwen2 or Llama model, saved with ``save_pretrained``.

vLLM, transformers and lm-eval load it like any Hub model, so tests, benchmarks and the offline demo exercise the
real code paths without a download.  Attention heads are 32 wide (vLLM's CPU backend rejects smaller ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
THINK_TOKENS = ["<think>", "</think>"]
CLOSE_LIKE = "e"  # the tiny thinking model writes </think> where its random text would write this
# a reasoning model's template: the generation prompt opens the trace (DeepSeek-R1 distills, QwQ), or with
# enable_thinking false writes an empty closed one (Qwen3's switch)
THINKING_TEMPLATE = CHAT_TEMPLATE.replace(
    "assistant\n{% endif %}",
    "assistant\n{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}",
)


def build_tiny_checkpoint(
    out_dir: Path,
    corpus: Iterable[str],
    *,
    arch: str = "qwen2",
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    chat_template: bool = True,
    seed: int = 0,
    init_std: float = 0.5,
    individual_digits: bool = False,
    thinking: bool = False,
) -> Path:
    """Write a checkpoint to ``out_dir`` (created) and return it.  Deterministic for a given corpus and seed.

    ``init_std`` 0.5 makes random greedy text varied (for harness tests); models meant to be trained use 0.02.
    ``thinking``: ``<think>`` and ``</think>`` are tokens and the chat template opens the trace in the generation
    prompt (a reasoning model's shape, for the thinking-trace paths and a server's reasoning parser).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if individual_digits:  # one token per digit: arithmetic a small model can learn
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus), trainer=trainer)
    tok.add_special_tokens(SPECIAL)  # after the vocabulary, as in Qwen's: eos is never id 0 (that hid a bug once)
    if thinking:
        tok.add_tokens(THINK_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=4096
    )
    if chat_template:
        fast.chat_template = THINKING_TEMPLATE if thinking else CHAT_TEMPLATE
    fast.save_pretrained(out_dir)

    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=4096,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=init_std,  # wider than the default 0.02 so greedy text varies instead of repeating
    )
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        raise ValueError(f"arch must be qwen2 or llama, not {arch!r}")
    if thinking:  # </think> takes over a common letter's output row, scaled up: greedy text closes its trace
        # where it would have written that letter, so random text has closed traces as well as budget-cut ones
        with torch.no_grad():
            rows = model.get_output_embeddings().weight
            rows[fast.convert_tokens_to_ids(THINK_TOKENS[1])] = 1.05 * rows[fast.convert_tokens_to_ids(CLOSE_LIKE)]
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    from .checkpoints import quiet_hf_progress

    quiet_hf_progress()
    model.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m stepdpo_bench.tiny OUT_DIR``: a tiny checkpoint (tokenizer trained on arith) for offline runs."""
    import argparse

    from .tasks import arith

    ap = argparse.ArgumentParser(description="Build a tiny random-weights Qwen2 checkpoint (no download).")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--arch", default="qwen2", choices=("qwen2", "llama"))
    args = ap.parse_args(argv)
    corpus = [p.question + "\n" + (p.reference or "") for p in arith.generate("train", 2000).problems]
    path = build_tiny_checkpoint(args.out_dir, corpus, arch=args.arch)
    print(f"tiny checkpoint written to {path}")


if __name__ == "__main__":
    main()
