"""Tune on kept takes, compare on a held-out line, and the three exports read back by plain tools."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.errors import StudioError
from studio.media.voice.phonemes import espeak_available

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
FAST = {"vocoder_iterations": 4}


@pytest.fixture(scope="module")
def tuned(tiny_voice, tmp_path_factory):
    """A studio whose v1 learned from three slow takes of one line (made once for the module)."""
    from studio.engine import Studio

    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("voice-tuned")
        patch.setenv("STUDIO_LAUNCHER", "python")
        patch.setenv("STUDIO_CACHE", str(root / "cache"))
        yield _tuned(Studio(root / "workspace"), tiny_voice)


def _tuned(studio, tiny_voice):
    studio.use_model("voice", str(tiny_voice))
    takes = studio.generate("voice", "slow: Good evening, Anna.", n=3, params=FAST)
    studio.curate("voice", accept=[c.id for c in takes])
    studio.tune("voice", steps=4, settings={"batch_size": 2})
    return studio, takes, studio.store.version("voice", "v1")


def test_tune_learns_from_the_kept_takes_and_compare_runs_on_a_new_line(tuned):
    studio, takes, version = tuned
    assert version.name == "v1" and sorted(version.curated) == sorted(c.id for c in takes)
    result = studio.compare("voice", after="v1", prompt="Where is the station?", n=2, scorers=["pace"], params=FAST)
    for side in ("before", "after"):
        assert 0 <= result[side]["mean_score"] <= 1 and result[side]["copies"] == 0.0
    assert result["after"]["candidates"] != result["before"]["candidates"]


def test_the_adapter_loads_with_stock_peft(tuned, tiny_voice, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from studio.media.voice.network import TinyVoice, VoiceConfig

    studio, _, _ = tuned
    files = [Path(p) for p in studio.export("voice", "v1", "peft", tmp_path / "adapter")["files"]]
    assert {p.name for p in files} >= {"adapter_config.json", "adapter_model.safetensors"}
    base = TinyVoice(VoiceConfig.load(tiny_voice))
    base.load_state_dict(load_file(str(tiny_voice / "model.safetensors")))
    model = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    ids, lengths = torch.tensor([[1, 0, 40, 0, 50, 0, 2]]), torch.tensor([7])
    x, mask = model.encode(ids, lengths)
    assert torch.isfinite(model.predict(x, mask)[0]).all()
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_ljspeech_export_reads_back_with_csv_and_soundfile(tuned, tmp_path):
    studio, takes, _ = tuned
    files = studio.export("voice", "v1", "ljspeech", tmp_path / "lj")["files"]
    with open(tmp_path / "lj" / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))
    assert sorted(r[0] for r in rows) == sorted(c.id for c in takes)
    for name, text, normalised in rows:
        assert text == normalised == "Good evening, Anna."
        audio, rate = soundfile.read(tmp_path / "lj" / "wavs" / f"{name}.wav")
        assert rate == 22050 and len(audio) > 0 and np.abs(audio).max() > 0.1
    assert len(files) == 4
    with pytest.raises(StudioError, match="not empty"):
        studio.export("voice", "v1", "ljspeech", tmp_path / "lj")


def test_hf_datasets_export_is_an_audio_folder(tuned, tmp_path):
    """The audio-folder layout: metadata.csv with a file_name column beside the WAVs.  (datasets' own
    audio loader needs torchcodec and FFmpeg, which this machine lacks, so the table is read as CSV.)"""
    import datasets

    studio, takes, _ = tuned
    studio.export("voice", "v1", "hf-datasets", tmp_path / "hf")
    data = datasets.load_dataset("csv", data_files=str(tmp_path / "hf" / "metadata.csv"), split="train")
    assert len(data) == 3 and set(data["transcription"]) == {"Good evening, Anna."}
    assert sorted(data["file_name"]) == sorted(f"{c.id}.wav" for c in takes)
    for name in data["file_name"]:
        audio, rate = soundfile.read(tmp_path / "hf" / name)
        assert rate == 22050 and len(audio) > 0


def test_unknown_format_and_base_adapter_are_one_sentence(tuned, tmp_path):
    studio, _, _ = tuned
    with pytest.raises(StudioError, match="Unknown voice export format 'mp3'"):
        studio.export("voice", "v1", "mp3", tmp_path / "x")
