"""Loading any causal LM folder, and refusing bad ones with one clear sentence."""
from __future__ import annotations

import json

import pytest

from studio.errors import StudioError


def test_import_is_free():
    import subprocess
    import sys

    code = "import sys, studio.media.text; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_gpt2"])
def test_standard_folder_loads_and_generates(medium, fixture, request):
    handle = medium.load(str(request.getfixturevalue(fixture)), "cpu")
    gens = medium.generate(handle, "a sea poem", [0, 1], medium.validate_params({"max_new_tokens": 8}))
    assert [g.seed for g in gens] == [0, 1]
    assert all(g.files["txt"].decode("utf-8") == g.text for g in gens)


def test_tokenizer_without_pad_pads_with_eos(medium, tiny_gpt2):
    handle = medium.load(str(tiny_gpt2), "cpu")
    assert handle.tokenizer.pad_token_id == handle.tokenizer.eos_token_id


def test_tokenizer_without_eos_is_refused(medium, tiny_gpt2, tmp_path):
    import shutil

    folder = tmp_path / "no-eos"
    shutil.copytree(tiny_gpt2, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["eos_token"] = None
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(StudioError, match="end-of-sequence"):
        medium.load(str(folder), "cpu")


def test_missing_folder(medium, tmp_path):
    with pytest.raises(StudioError, match="does not exist"):
        medium.load(str(tmp_path / "nothing"), "cpu")


def test_pickle_only_weights_are_refused(medium, tiny_llama, tmp_path):
    import shutil

    folder = tmp_path / "pickle"
    shutil.copytree(tiny_llama, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(StudioError, match="safetensors"):
        medium.load(str(folder), "cpu")


def test_model_without_causal_head_is_refused(medium, tmp_path):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(folder)
    with pytest.raises(StudioError, match="no causal language-model head"):
        medium.load(str(folder), "cpu")


def test_remote_code_config_is_refused(medium, tiny_llama, tmp_path):
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "my_custom_lm"
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig",
                          "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(StudioError, match="remote code"):
        medium.load(str(folder), "cpu")


def test_adapter_switching_does_not_reload_the_base(medium, tiny_llama, tmp_path, make_candidates):
    from studio.training import run_tune

    handle = medium.load(str(tiny_llama), "cpu")
    base_weights = handle.model.model.embed_tokens.weight
    params = medium.validate_params({"max_new_tokens": 12, "temperature": 0})
    before = medium.generate(handle, "a sea poem", [0], params)[0].text
    examples = make_candidates("a sea poem", ["salt salt salt salt"] * 4)
    settings = {**medium.tune_defaults, "steps": 30, "lr": 5e-2, "checkpoint_every": 100}
    task = medium.tune_task(handle, examples, settings, None)
    run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")
    after = medium.generate(handle, "a sea poem", [0], params, adapter=str(tmp_path / "v1"))[0].text
    again = medium.generate(handle, "a sea poem", [0], params)[0].text
    assert after != before
    assert again == before  # base = adapters disabled
    assert handle.model.get_base_model().model.embed_tokens.weight is base_weights


def test_an_empty_error_message_is_still_one_sentence(medium, tiny_llama, monkeypatch):
    """A tokenizer failure whose message is empty said IndexError (str(exc).splitlines()[0])."""
    import transformers

    def fail(*args, **kwargs):
        raise OSError("")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fail)
    with pytest.raises(StudioError, match=r"No usable tokenizer .*\(OSError\)\."):
        medium.load(str(tiny_llama), "cpu")


def test_a_hub_id_not_in_the_cache_says_how_to_get_it(medium, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(StudioError, match="not on this machine; get it first with `studio models pull"):
        medium.load("someone/not-here", "cpu")


def test_the_prompt_length_against_the_context_is_known_before_generate():
    """Issue 21: 433 tokens against the grammar model's 256 was only an error after Generate; the medium
    counts the prompt (as generation wraps it) against its context with the tokenizer alone."""
    from studio import media
    from studio.media.text.builtin import GRAMMAR, grammar_folder
    from studio.media.text.generate import check_prompt
    from studio.media.text.model import load_tokenizer

    medium = media.get("text")
    short = medium.prompt_length(GRAMMAR, "a haiku about snow")
    assert short is not None and not short.over and short.unit == "tokens" and short.limit == 255
    long = medium.prompt_length(GRAMMAR, "a haiku about the first snow on the hill " * 60)
    assert long.over and long.used > 400
    handle = type("Handle", (), {"tokenizer": load_tokenizer(str(grammar_folder())), "context": 256})()
    with pytest.raises(StudioError, match=f"The prompt is {long.used} tokens"):  # what Generate would say
        check_prompt(handle, "a haiku about the first snow on the hill " * 60, 16)


def test_a_text_cut_off_at_its_length_limit_says_so_on_its_card(medium, tiny_llama, make_candidates, tmp_path):
    """The card of a text that generation stopped at max_new_tokens names the limit and the setting that lets it
    finish (the tokenizer alone counts, as the tune does); a text that ended before it, or one with no recorded
    limit (imported), shows nothing, and a model no longer on the machine shows nothing rather than an error."""
    import dataclasses
    import shutil

    from studio.loading import _tokenizer
    from studio.media.text.prompting import completion_ids

    handle = medium.load(str(tiny_llama), "cpu")
    long = "the hill the fox red red moon over the hill the fox runs"
    limit = len(completion_ids(handle.tokenizer, long, ended=False))
    [text] = make_candidates("a sea poem", [long])

    def card_at(params, model=str(tiny_llama)):
        return medium.card_detail(dataclasses.replace(text, model=model, params=params))

    detail = card_at({"max_new_tokens": limit})
    assert f"Cut off at the length limit ({limit} tokens)" in detail and "Longest text (tokens)" in detail
    assert card_at({"max_new_tokens": limit + 1}) is None
    assert card_at({}) is None
    gone = tmp_path / "gone"
    shutil.copytree(tiny_llama, gone)
    _tokenizer.cache_clear()
    assert card_at({"max_new_tokens": limit}, str(gone)) is not None
    shutil.rmtree(gone)
    _tokenizer.cache_clear()
    assert card_at({"max_new_tokens": limit}, str(gone)) is None

    # what generation wrote at a 3-token limit is cut there, by the card's count
    params = medium.validate_params({"max_new_tokens": 3, "stop": []})
    generated = medium.generate(handle, "a sea poem", [0, 1], params)
    written = make_candidates("a sea poem", [g.text for g in generated], "g")
    for g, c in zip(generated, written):
        cut = len(completion_ids(handle.tokenizer, g.text, ended=False)) >= 3
        shown = medium.card_detail(dataclasses.replace(c, model=str(tiny_llama), params=params))
        assert (shown is not None) == cut
    assert any(medium.card_detail(dataclasses.replace(c, model=str(tiny_llama), params=params)) for c in written)
    # compare's "cut off at the length limit" counts the same texts
    shown = [dataclasses.replace(c, model=str(tiny_llama), params=params) for c in written]
    assert medium.unfinished(handle, shown) == [medium.card_detail(c) is not None for c in shown]
