"""The MusicGen path on a tiny model built from configs (T5, EnCodec and decoder, random weights):
load by folder, generate WAVs, tune the decoder with LoRA from accepted clips, switch adapters, export."""
import json

import numpy as np
import pytest
import soundfile

from studio import training
from studio.errors import StudioError
from studio.media import get
from studio.medium import Candidate, Version

WORDS = ["<pad>", "</s>", "<unk>", "calm", "piano", "music", "fast", "drums", "a", "song"]


def build_tiny_musicgen(folder):
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, PreTrainedTokenizerFast, T5Config)

    torch.manual_seed(0)
    text = T5Config(vocab_size=len(WORDS), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    audio = EncodecConfig(sampling_rate=8000, hidden_size=16, num_filters=4, codebook_size=64, codebook_dim=16,
                          compress=1, num_residual_layers=1, num_lstm_layers=1, upsampling_ratios=[8, 5, 4, 2],
                          target_bandwidths=[0.3], audio_channels=1, normalize=False, chunk_length_s=None)
    decoder = MusicgenDecoderConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    ffn_dim=32, num_codebooks=2, max_position_embeddings=128, pad_token_id=64,
                                    bos_token_id=64, decoder_start_token_id=64, tie_word_embeddings=False)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    model = MusicgenForConditionalGeneration(config)
    with torch.no_grad():  # codebooks start at zero, which would make every code sound the same
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config.decoder_start_token_id = 64
    model.generation_config.pad_token_id = 64
    model.generation_config.bos_token_id = 64
    model.save_pretrained(folder)
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_tiny_musicgen(tmp_path_factory.mktemp("musicgen"))
    medium = get("music")
    return medium, medium.load(str(folder), "cpu"), folder


LSB = 1 / 32768  # one step of a 16-bit WAV


def _samples(gen) -> np.ndarray:
    import io

    return soundfile.read(io.BytesIO(gen.files["wav"]))[0]


def test_all_seeds_in_one_generate_and_each_seed_alone_gives_its_clip(tiny, monkeypatch):
    medium, handle, _ = tiny
    params = medium.validate_params({"duration": 0.6, "top_k": 20, "top_p": 0.9})
    calls = []
    real = handle.model.generate
    monkeypatch.setattr(handle.model, "generate", lambda *a, **k: calls.append(k["input_ids"].shape[0]) or real(*a, **k))
    batch = medium.generate(handle, "calm piano music", [4, 5, 6, 7], params)
    assert calls == [4]  # one generate for the whole call
    for seed, position in ((6, 2), (4, 0)):
        (alone,) = medium.generate(handle, "calm piano music", [seed], params)
        # the same codes; the audio decoder's batched convolutions may move a sample by a bit
        assert np.abs(_samples(alone) - _samples(batch[position])).max() <= 2 * LSB
    pair = medium.generate(handle, "calm piano music", [7, 5], params)
    assert np.abs(_samples(pair[0]) - _samples(batch[3])).max() <= 2 * LSB
    assert np.abs(_samples(batch[0]) - _samples(batch[1])).max() > 100 * LSB  # other seeds, other clips
    greedy = medium.generate(handle, "calm piano music", [1, 2], {**params, "temperature": 0.0})
    assert np.abs(_samples(greedy[0]) - _samples(greedy[1])).max() <= 2 * LSB  # no sampling: one clip


def _write(gens, root, prompt, version):
    out = []
    for g in gens:
        path = root / f"{version}-{g.seed}.wav"
        path.write_bytes(g.files["wav"])
        out.append(Candidate(id=f"{version}-{g.seed}", medium="music", prompt=prompt, seed=g.seed, params={},
                             version=version, model="tiny", path=str(path), files={"wav": str(path)},
                             decision="auto_accepted"))
    return out


def test_tiny_musicgen_loads_generates_tunes_and_exports(tiny, tmp_path):
    medium, handle, folder = tiny
    assert handle.kind == "musicgen"
    params = medium.validate_params({"duration": 0.6, "top_k": 20})
    gens = medium.generate(handle, "calm piano music", [0, 1, 2], params)
    assert [g.seed for g in gens] == [0, 1, 2] and list(gens[0].files) == ["wav"]
    again = medium.generate(handle, "calm piano music", [1], params)
    assert np.abs(_samples(again[0]) - _samples(gens[1])).max() <= 2 * LSB  # same seed, same clip
    clips = _write(gens, tmp_path, "calm piano music", "base")
    for c in clips:
        signal, rate = soundfile.read(c.path)
        assert rate == 8000 and 0 < np.abs(signal).max() < 1.0 and len(signal) > 0

    settings = dict(medium.tune_defaults, steps=4, seed=0, checkpoint_every=2)
    task = medium.tune_task(handle, clips, settings, None)
    import torch

    first = float(task.loss(0, torch.Generator().manual_seed(0)).detach())
    noted = medium.tune_task(handle, clips[:1], {**settings, "objective": "kto"}, None, dropped=clips[1:])
    assert noted.note.startswith("MusicGen tunes with sft") and "2 dropped clips" in noted.note
    result = training.run_tune(task, settings, tmp_path / "job")
    assert np.isfinite(result["loss"]) and np.isfinite(first)
    task.save(tmp_path / "v1")
    config = json.loads((tmp_path / "v1" / "adapter_config.json").read_text())
    assert set(config["target_modules"]) <= {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"}
    assert (tmp_path / "v1" / "adapter_model.safetensors").exists()

    tuned = medium.generate(handle, "calm piano music", [0], params, adapter=str(tmp_path / "v1"))
    base_again = medium.generate(handle, "calm piano music", [0], params)
    assert np.abs(_samples(base_again[0]) - _samples(gens[0])).max() <= 2 * LSB  # the adapter is off again
    assert len(tuned[0].files["wav"]) > 44

    version = Version(medium="music", name="v1", parent="base", model=str(folder), settings=settings,
                      curated=[c.id for c in clips], path=str(tmp_path / "v1"))
    files = medium.export(handle, version, "peft", tmp_path / "out-peft", clips)
    assert {p.name for p in files} >= {"adapter_config.json", "adapter_model.safetensors"}
    files = medium.export(handle, version, "dataset", tmp_path / "out-data", clips)
    rows = [json.loads(line) for line in (tmp_path / "out-data" / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == [f"{c.id}.wav" for c in clips]


def test_duration_beyond_the_limit_and_silent_clips_are_refused(tiny, tmp_path):
    medium, handle, _ = tiny
    with pytest.raises(StudioError, match="limit"):
        medium.generate(handle, "calm piano music", [0], medium.validate_params({"duration": 60.0}))
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(8000, dtype=np.float32), 8000)
    clip = Candidate(id="s", medium="music", prompt="calm", seed=0, params={}, version="base", model="tiny",
                     path=str(silent), files={"wav": str(silent)}, decision="hand_accepted")
    with pytest.raises(StudioError, match="silent"):
        medium.tune_task(handle, [clip], dict(medium.tune_defaults), None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silent.wav"]
