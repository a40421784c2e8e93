"""Sesame CSM through transformers, on a tiny model built from configs (random weights, no hub): a Llama
backbone, a depth decoder and a Mimi codec, with a character tokenizer built by ``tokenizers``."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import soundfile

from killed import KilledAt
from studio.errors import StudioError
from studio.media import get
from studio.training import run_tune

from voice_helpers import candidate_from_files

CODEBOOKS = 4
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>", "<unk>"]
# one turn: bos, [speaker], the line, eos, then (when the turn carries audio) its frames and the end of audio
TEMPLATE = ("{%- for message in messages -%}{{ bos_token }}[{{ message['role'] }}]{{ message['content'][0]['text'] }}"
            "{{ eos_token }}{%- if message['content'] | length > 1 -%}<|AUDIO|><|audio_eos|>{%- endif -%}"
            "{%- endfor -%}")


def build_tiny_csm(folder):
    import string

    import torch
    from tokenizers import AddedToken, Tokenizer, models
    from transformers import (CsmConfig, CsmForConditionalGeneration, CsmProcessor, EncodecFeatureExtractor,
                              PreTrainedTokenizerFast)

    folder.mkdir(parents=True, exist_ok=True)
    characters = sorted(set(string.ascii_letters + string.digits + " .,;:'!?-[]"))
    vocab = {token: i for i, token in enumerate(SPECIALS + characters)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))  # no merges: one token a character
    backend.add_special_tokens([AddedToken(token, special=True) for token in SPECIALS[:4]])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=SPECIALS[0], eos_token=SPECIALS[1],
                                        pad_token=SPECIALS[2], unk_token=SPECIALS[4])
    processor = CsmProcessor(feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=24000),
                             tokenizer=tokenizer, chat_template=TEMPLATE)
    small = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
    config = CsmConfig(
        num_codebooks=CODEBOOKS, vocab_size=32, text_vocab_size=len(tokenizer), num_hidden_layers=2,
        max_position_embeddings=1024, bos_token_id=0, pad_token_id=2, audio_token_id=2, audio_eos_token_id=3,
        codebook_pad_token_id=31, codebook_eos_token_id=0, **small,
        depth_decoder_config=dict(num_codebooks=CODEBOOKS, backbone_hidden_size=32, vocab_size=32, num_hidden_layers=1,
                                  max_position_embeddings=CODEBOOKS + 1, **small),
        codec_config=dict(model_type="mimi", hidden_size=32, num_filters=8, num_residual_layers=1,
                          upsampling_ratios=[8, 5, 4], codebook_size=32, codebook_dim=32,
                          vector_quantization_hidden_dimension=32, upsample_groups=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=2, intermediate_size=64, sliding_window=16,
                          num_quantizers=CODEBOOKS, use_cache=False))
    torch.manual_seed(0)
    model = CsmForConditionalGeneration(config)
    with torch.no_grad():  # Mimi starts with empty codebooks (every code the same sound): give each code its own
        for name, buffer in model.codec_model.named_buffers():
            if name.endswith("embed_sum"):
                buffer.normal_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_csm(tmp_path_factory):
    return build_tiny_csm(tmp_path_factory.mktemp("tiny-csm"))


@pytest.fixture(scope="module")
def csm(tiny_csm):
    medium = get("voice")
    return medium, medium.load(str(tiny_csm))


PARAMS = {"max_seconds": 0.5}  # 37 frames of the tiny codec (75 a second)
LINE = "good morning"


def _kept(medium, handle, root, seeds=(0, 1)):
    takes = medium.generate(handle, LINE, list(seeds), medium.validate_params(PARAMS))
    return [candidate_from_files(root, f"t{t.seed}", LINE, t.files, seed=t.seed) for t in takes]


def test_csm_reads_a_line_and_seeds_differ(csm):
    medium, handle = csm
    assert handle.kind == "csm" and handle.sample_rate == 24000
    takes = medium.generate(handle, "slow: " + LINE, [0, 1], medium.validate_params(PARAMS))
    audios = []
    for take in takes:
        audio, rate = soundfile.read(io.BytesIO(take.files["wav"]))
        assert rate == 24000 and len(audio) > 0
        assert take.files["txt"].decode().strip() == LINE
        assert take.files["png"].startswith(b"\x89PNG")
        codes = np.load(io.BytesIO(take.files["codes.npy"]))
        record = json.loads(take.files["json"])
        assert codes.shape == (record["frames"], CODEBOOKS) and record["style"] == ["slow"]
        assert len(audio) == record["frames"] * 24000 // 75  # the codec's frames, nothing added
        audios.append(audio)
    assert len(audios[0]) != len(audios[1]) or not np.allclose(audios[0], audios[1])
    again = medium.generate(handle, "slow: " + LINE, [0], medium.validate_params(PARAMS))
    assert again[0].files["wav"] == takes[0].files["wav"]  # same seed, same take


def test_csm_takes_are_scored_from_their_wavs(csm, tmp_path, monkeypatch):
    from studio.medium import ScoringContext

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    medium, handle = csm
    kept = _kept(medium, handle, tmp_path)
    context = ScoringContext(medium=medium, favourites=[], decided=[], options={})
    for name in ("intelligibility", "naturalness", "pace", "pitch_range"):
        scores = medium.scorers()[name](context)(kept)
        assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


def test_csm_tune_changes_the_takes_and_its_adapter_loads_with_peft(csm, tiny_csm, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import CsmForConditionalGeneration

    medium, handle = csm
    kept = _kept(medium, handle, tmp_path)
    settings = {**medium.tune_defaults, "steps": 6, "lr": 2e-2, "rank": 4, "batch_size": 2, "checkpoint_every": 100}
    task = medium.tune_task(handle, kept, settings, None)
    with torch.no_grad():
        first = float(task.loss(0, torch.Generator().manual_seed(0)))
    run_tune(task, settings, tmp_path / "job")
    with torch.no_grad():
        assert float(task.loss(0, torch.Generator().manual_seed(0))) < first  # it learned the kept frames
    names = list(task.adapter_state())
    assert names and all("backbone_model.layers" in n and "lora" in n for n in names)
    task.save(tmp_path / "adapter")

    params = medium.validate_params(PARAMS)
    base = medium.generate(handle, LINE, [5], params)[0].files["wav"]
    tuned = medium.generate(handle, LINE, [5], params, adapter=str(tmp_path / "adapter"))[0].files["wav"]
    assert tuned != base
    assert medium.generate(handle, LINE, [5], params)[0].files["wav"] == base  # the base is back

    stock = PeftModel.from_pretrained(CsmForConditionalGeneration.from_pretrained(str(tiny_csm)),
                                      str(tmp_path / "adapter"))
    loaded = {n: p for n, p in stock.named_parameters() if "lora" in n}
    assert len(loaded) == len(names)
    for name, value in task.adapter_state().items():
        assert torch.allclose(loaded[name], value.detach())


def test_csm_tune_resumes_after_a_kill(csm, tiny_csm, tmp_path):
    import torch

    medium, handle = csm
    kept = _kept(medium, handle, tmp_path)
    settings = {**medium.tune_defaults, "steps": 5, "lr": 1e-2, "rank": 2, "batch_size": 1, "checkpoint_every": 2}
    straight = medium.tune_task(handle, kept, settings, None)
    run_tune(straight, settings, tmp_path / "a")
    with pytest.raises(RuntimeError):
        run_tune(KilledAt(medium.tune_task(handle, kept, settings, None), 3), settings, tmp_path / "b")
    resumed = medium.tune_task(medium.load(str(tiny_csm)), kept, settings, None)  # a fresh process's load
    run_tune(resumed, settings, tmp_path / "b")  # picks up the step-2 checkpoint
    want, got = straight.adapter_state(), resumed.adapter_state()
    assert set(want) == set(got)
    for name in want:
        assert torch.allclose(want[name], got[name], atol=1e-5), name


def test_csm_tune_lays_out_a_take_as_the_processor_does(csm, tmp_path):
    """A take without codes is encoded again by Mimi; its loss is the one CSM's own processor and forward
    give for the same line and WAV (the documented training path), to the last digit."""
    import torch

    from studio.media.voice.audio import read_wav
    from studio.media.voice.codec_lm import _prompt_text

    medium, handle = csm
    take = _kept(medium, handle, tmp_path, seeds=(0,))[0]
    del take.files["codes.npy"]
    task = medium.tune_task(handle, [take], {**medium.tune_defaults, "rank": 2, "batch_size": 1}, None)
    ids, codes = task.rows[0]
    assert codes.shape[1] == CODEBOOKS and int((ids == 2).sum()) == len(codes) > 0

    audio, _ = read_wav(take.files["wav"])
    # the processor counts a clip's frames from the codec's convolutions: the tiny Mimi's (ratios 4, 5, 8
    # as the encoder applies them, each after a residual block of kernels 3 and 1; the last conv; the 2x downsample)
    frames = dict(kernel_sizes=[7, 3, 1, 8, 3, 1, 10, 3, 1, 16, 3, 4], strides=[1, 1, 1, 4, 1, 1, 5, 1, 1, 8, 1, 2],
                  dilations=[1] * 12, use_causal_conv=True)
    speaker = json.loads(open(take.files["json"]).read())["speaker"]
    stock = handle.processor(text=_prompt_text(handle.processor, speaker, LINE, True), audio=audio,
                             output_labels=True, encoded_length_kwargs=frames)
    assert int((stock["input_ids"] == 2).sum()) == len(codes)
    with torch.no_grad():
        want = task.peft(**stock).loss
        got = task.loss(0, torch.Generator().manual_seed(0))
    assert torch.isfinite(got) and torch.allclose(want, got, atol=1e-6)


def test_a_broken_csm_folder_is_one_sentence(tiny_csm, tmp_path):
    medium = get("voice")
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_csm, no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).unlink()
    with pytest.raises(StudioError) as err:
        medium.load(str(no_tokenizer))
    assert "tokenizer" in str(err.value) and "\n" not in str(err.value)

    wrong = tmp_path / "wrong-weights"
    shutil.copytree(tiny_csm, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["hidden_size"] = 48  # the weights were saved at 32
    (wrong / "config.json").write_text(json.dumps(config))
    with pytest.raises(StudioError) as err:
        medium.load(str(wrong))
    assert "do not fit its config.json" in str(err.value) and "\n" not in str(err.value)

    from safetensors.torch import load_file, save_file

    partial = tmp_path / "missing-weights"
    shutil.copytree(tiny_csm, partial)
    weights = load_file(str(partial / "model.safetensors"))
    del weights["lm_head.weight"]  # transformers would start it at random
    save_file(weights, str(partial / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(StudioError) as err:
        medium.load(str(partial))
    assert "lm_head.weight" in str(err.value) and "\n" not in str(err.value)
