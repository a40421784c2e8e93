"""SpeechT5 through transformers, on a tiny model built from configs (random weights, no hub)."""
from __future__ import annotations

import io
import string

import numpy as np
import pytest
import soundfile

from studio.media import get

pytest.importorskip("sentencepiece")
pytestmark = pytest.mark.slow  # two SpeechT5 generations and a tune: tens of seconds on two cores


def build_tiny_speecht5(folder):
    import sentencepiece
    import torch
    from safetensors.torch import save_file
    from transformers import (SpeechT5Config, SpeechT5FeatureExtractor, SpeechT5ForTextToSpeech, SpeechT5HifiGan,
                              SpeechT5HifiGanConfig, SpeechT5Processor, SpeechT5Tokenizer)

    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "corpus.txt"
    text.write_text("\n".join(["the quick brown fox jumps over the lazy dog", string.ascii_lowercase,
                               "good morning where is the station"] * 20))
    sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "spm_char"),
                                             model_type="char", vocab_size=32, character_coverage=1.0,
                                             bos_id=0, pad_id=1, eos_id=2, unk_id=3)
    text.unlink()
    tokenizer = SpeechT5Tokenizer(str(folder / "spm_char.model"))
    processor = SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tokenizer)
    torch.manual_seed(0)
    config = SpeechT5Config(vocab_size=len(tokenizer), hidden_size=32, encoder_layers=1, decoder_layers=1,
                            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                            decoder_ffn_dim=64, speech_decoder_prenet_units=32, speech_decoder_postnet_layers=2,
                            speech_decoder_postnet_units=32, speaker_embedding_dim=16, max_text_positions=200,
                            max_speech_positions=800)
    SpeechT5ForTextToSpeech(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(upsample_initial_channel=16, resblock_kernel_sizes=[3],
                                                    resblock_dilation_sizes=[[1]]))
    vocoder.save_pretrained(folder / "vocoder")
    save_file({"speaker": torch.randn(2, 16)}, str(folder / "speaker.safetensors"))
    return folder


@pytest.fixture(scope="module")
def speecht5(tmp_path_factory):
    medium = get("voice")
    return medium, medium.load(str(build_tiny_speecht5(tmp_path_factory.mktemp("tiny-speecht5"))))


def test_speecht5_reads_a_line_and_seeds_differ(speecht5):
    medium, handle = speecht5
    params = medium.validate_params({"max_length_ratio": 3})
    takes = medium.generate(handle, "good morning", [0, 1], params)
    audios = []
    for take in takes:
        audio, rate = soundfile.read(io.BytesIO(take.files["wav"]))
        assert rate == 16000 and len(audio) > 0
        assert take.files["txt"].decode().strip() == "good morning"
        audios.append(audio)
    assert len(audios[0]) != len(audios[1]) or not np.allclose(audios[0], audios[1])


def test_speecht5_tune_task_has_a_loss_and_lora_weights(speecht5, tmp_path):
    import torch

    from studio.medium import Candidate

    medium, handle = speecht5
    takes = medium.generate(handle, "good morning", [0, 1], medium.validate_params({"max_length_ratio": 3}))
    examples = []
    for take in takes:
        files = {}
        for ext, data in take.files.items():
            (tmp_path / f"{take.seed}.{ext}").write_bytes(data)
            files[ext] = str(tmp_path / f"{take.seed}.{ext}")
        examples.append(Candidate(id=f"t{take.seed}", medium="voice", prompt="good morning", seed=take.seed,
                                  params={}, version="base", model="tiny", path=files["wav"], files=files))
    task = medium.tune_task(handle, examples, {"rank": 2, "batch_size": 2}, None)
    loss = task.loss(0, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    assert task.parameters() and all("lora" in name for name in task.adapter_state())
    task.save(tmp_path / "adapter")
    with_adapter = medium.generate(handle, "good morning", [0], medium.validate_params({"max_length_ratio": 3}),
                                   adapter=str(tmp_path / "adapter"))
    assert with_adapter[0].files["wav"]


def test_speecht5_tunes_the_kept_set_when_the_voice_default_is_kto(tmp_path, monkeypatch):
    """kto is the built-in voice's default and its own: a SpeechT5 tune with drops in the batch learns the kept
    set (sft) and says so in its result; naming kto for it is one sentence."""
    from studio.engine import Studio
    from studio.errors import StudioError
    from studio.media import get

    monkeypatch.setenv("STUDIO_LAUNCHER", "python")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    folder = build_tiny_speecht5(tmp_path / "tiny-speecht5")
    assert get("voice").tune_objectives(str(folder)) == ("sft",)
    studio = Studio(tmp_path / "ws")
    studio.use_model("voice", str(folder))
    takes = studio.generate("voice", "good morning", n=3, params={"max_length_ratio": 3})
    studio.curate("voice", accept=[takes[0].id, takes[1].id], reject=[takes[2].id])
    with pytest.raises(StudioError, match="tunes with objective sft, not kto"):
        studio.tune("voice", steps=1, settings={"objective": "kto", "batch_size": 2})
    tuned = studio.tune("voice", steps=1, settings={"batch_size": 2})
    assert "no kto objective" in tuned["note"] and tuned["version"] == "v1"
    # sft has no won pairs to stop at: AdamW's usual momentum, where the built-in voice's default is 0
    assert studio.store.version("voice", "v1").settings["momentum"] == 0.9
    assert get("voice").tune_defaults["momentum"] == 0.0 and get("voice").model_tune_defaults(str(folder)) == {
        "momentum": 0.9}
    again = studio.tune("voice", steps=1, settings={"batch_size": 2, "momentum": 0.5})  # the artist's value wins
    assert studio.store.version("voice", again["version"]).settings["momentum"] == 0.5
