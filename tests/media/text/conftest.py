"""Tiny text models built from configs (no downloads): a GPT-2 and a Llama, saved as standard folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from studio.medium import Candidate


def _tokenizer(chat: bool, pad: bool):
    from studio.media.text import defaults
    from studio.media.text.corpus import examples

    texts = [t for pair in examples(400, seed=1) for t in pair]
    old = defaults.VOCAB_SIZE
    defaults.VOCAB_SIZE = 400
    try:
        tokenizer = defaults.build_tokenizer(texts)
    finally:
        defaults.VOCAB_SIZE = old
    if not chat:
        tokenizer.chat_template = None
    if not pad:
        tokenizer.pad_token = None
    return tokenizer


def build_tiny(folder: Path, arch: str, *, chat: bool = True, pad: bool = True, context: int = 128) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = _tokenizer(chat, pad)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=context, n_embd=32, n_layer=2,
                                           n_head=2, eos_token_id=tokenizer.eos_token_id,
                                           bos_token_id=tokenizer.eos_token_id))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=context, eos_token_id=tokenizer.eos_token_id,
                                             pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """No chat template and no pad token, as many base models ship."""
    return build_tiny(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2", chat=False, pad=False)


@pytest.fixture
def medium():
    from studio.media import get

    return get("text")


@pytest.fixture
def make_candidates(tmp_path):
    """A function making candidates whose .txt files hold the given texts, as the engine would."""
    return lambda prompt, texts, tag="c", decisions=None: _candidates(tmp_path, prompt, texts, tag, decisions)


def _candidates(folder: Path, prompt: str, texts, tag: str, decisions) -> list[Candidate]:
    out = []
    for i, text in enumerate(texts):
        path = Path(folder) / f"{tag}{i}.txt"
        path.write_text(text, encoding="utf-8")
        out.append(Candidate(id=f"{tag}{i}", medium="text", prompt=prompt, seed=i, params={}, version="base",
                             model="tiny", path=str(path), files={"txt": str(path)},
                             decision=(decisions[i] if decisions else "pending")))
    return out


@pytest.fixture(scope="session")
def default_handle():
    """The shipped grammar model (assets/, built-in:grammar), loaded once on the CPU."""
    from studio.media import get
    from studio.media.text.builtin import grammar_folder

    medium = get("text")
    folder = grammar_folder()
    if not (folder / "model.safetensors").exists():
        pytest.skip("the embedded default is not trained yet (studio train-defaults text)")
    return medium.load(str(folder), "cpu")
