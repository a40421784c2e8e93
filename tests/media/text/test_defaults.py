"""The embedded default: its trainer, its grammar, and the shipped folder."""
from __future__ import annotations

import json
import random
from pathlib import Path

from studio.media.text import corpus


def test_grammar_is_seeded_and_steerable():
    assert corpus.examples(50, seed=3) == corpus.examples(50, seed=3)
    rng = random.Random(0)
    haiku = corpus.completion(rng, "sea", "haiku", "melancholy", "short")
    assert len(haiku.splitlines()) == 3
    assert len(corpus.completion(rng, "city", "limerick", "angry", "long").splitlines()) == 5
    sad = corpus.completion(rng, "sea", "poem", "melancholy", "long")
    assert any(word in sad for word in corpus.MOODS["melancholy"]["endings"])
    assert {p.split(",")[0] for p, _ in corpus.examples(300)} & {"a short sea poem", "a long forest poem"}


def test_train_writes_a_standard_folder(monkeypatch, tmp_path, medium):
    from studio.media.text import defaults

    monkeypatch.setattr(defaults, "EXAMPLES", 200)
    monkeypatch.setattr(defaults, "VOCAB_SIZE", 300)
    figures = defaults.train(tmp_path / "model", steps=3, log=lambda *_: None)
    assert figures["steps"] == 3 and figures["size_bytes"] < 20 * 2**20
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= names
    handle = medium.load(str(tmp_path / "model"), "cpu")
    assert handle.tokenizer.pad_token == "<|pad|>" and handle.tokenizer.chat_template
    assert len(medium.generate(handle, "a short sea poem", [0, 1], medium.validate_params({}))) == 2


def test_shipped_default(medium):
    from studio.media.text.builtin import GRAMMAR, resolve

    folder = Path(resolve(GRAMMAR))
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 20 * 2**20
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert not list(folder.glob("*.bin")) and (folder / "model.safetensors").exists()


def test_shipped_default_is_steered_by_the_prompt(medium, default_handle):
    params = medium.validate_params({"temperature": 0.7})
    haiku = medium.generate(default_handle, "haiku about the forest, calm", list(range(8)), params)
    assert sum(len(g.text.splitlines()) == 3 for g in haiku) >= 6
    words = lambda gens: " ".join(g.text for g in gens).split()  # noqa: E731
    sea = words(medium.generate(default_handle, "a short sea poem, melancholy", list(range(8)), params))
    assert sum(w in corpus.THEMES["sea"]["nouns"] for w in sea) > sum(w in corpus.THEMES["city"]["nouns"] for w in sea)
    sad = sum(w in corpus.MOODS["melancholy"]["adjs"] + corpus.MOODS["melancholy"]["feelings"] for w in sea)
    joy = sum(w in corpus.MOODS["joyful"]["adjs"] + corpus.MOODS["joyful"]["feelings"] for w in sea)
    assert sad > joy
