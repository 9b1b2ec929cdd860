"""A tiny random Llama with a character tokenizer, saved as a Hugging Face folder: the offline
stand-in for a real LLM in the harvesting tests (shared by test_sae_harvest and
tests/errors/test_sae_errors.py)."""

from __future__ import annotations

import string
from pathlib import Path

TEXT = ("The quick brown fox jumps over the lazy dog. " * 3 + "Sphinx of black quartz, judge "
        "my vow! Pack my box with five dozen liquor jugs. ") * 20


def make_tiny_llm(folder: Path, n_layers: int) -> Path:
    """Save the model (H = 32, ``n_layers`` blocks, seed 0), its tokenizer and ``text.txt`` in
    ``folder``; returns ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<eos>": 1, "<unk>": 2}
    for c in string.printable:
        vocab.setdefault(c, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>",
                                  unk_token="<unk>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=128, bos_token_id=0, eos_token_id=1)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "text.txt").write_text(TEXT)
    return folder
