"""Takes from a tiny voice built in the test: files, distinct seeds, styles, bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile
from PIL import Image

from studio.errors import StudioError
from studio.media import get
from studio.media.voice.phonemes import espeak_available

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
FAST = {"vocoder_iterations": 4}


@pytest.fixture(scope="module")
def voice(tiny_voice):
    medium = get("voice")
    return medium, medium.load(str(tiny_voice))


def test_each_seed_is_a_different_take_of_the_line(voice):
    medium, handle = voice
    takes = medium.generate(handle, "Hello there, friend.", [0, 1, 2], medium.validate_params(FAST))
    assert [t.seed for t in takes] == [0, 1, 2]
    lengths = set()
    for take in takes:
        assert list(take.files) == ["wav", "png", "txt", "json", "npy"]
        audio, rate = soundfile.read(io.BytesIO(take.files["wav"]))
        assert rate == 22050 and len(audio) > 0.2 * rate and 0.5 < np.abs(audio).max() <= 1.0
        assert Image.open(io.BytesIO(take.files["png"])).size == (512, 160)
        assert take.files["txt"].decode().strip() == "Hello there, friend."
        alignment = json.loads(take.files["json"])
        assert len(alignment["ids"]) == len(alignment["durations"]) == len(alignment["pitch_hz"])
        mel = np.load(io.BytesIO(take.files["npy"]), allow_pickle=False)  # the network's own, what a tune learns
        assert mel.dtype == np.float16 and mel.shape[0] == sum(alignment["durations"]) and np.isfinite(mel).all()
        lengths.add(len(audio))
    assert len({t.files["wav"] for t in takes}) == 3 and len(lengths) > 1  # different readings, not only phase
    again = medium.generate(handle, "Hello there, friend.", [1], medium.validate_params(FAST))[0]
    assert again.files["wav"] == takes[1].files["wav"]


def test_a_style_moves_the_reading_and_a_typo_in_it_is_refused(voice):
    medium, handle = voice
    params = medium.validate_params(FAST)
    slow = medium.generate(handle, "slow: Good morning.", [0], params)[0]
    fast = medium.generate(handle, "fast: Good morning.", [0], params)[0]
    assert len(slow.files["wav"]) > 1.3 * len(fast.files["wav"])
    assert slow.files["txt"].decode().strip() == "Good morning."
    with pytest.raises(StudioError, match="Unknown voice style 'slwo'"):
        medium.generate(handle, "slwo: Good morning.", [0], params)


def test_no_variation_reads_every_seed_alike(voice):
    medium, handle = voice
    takes = medium.generate(handle, "Yes.", [3, 4], medium.validate_params({**FAST, "variation": 0}))
    assert json.loads(takes[0].files["json"])["durations"] == json.loads(takes[1].files["json"])["durations"]


@pytest.mark.parametrize("params, name", [({"pace": 9}, "pace"), ({"pace": "x"}, "pace"),
                                          ({"batch_size": 1.5}, "batch_size")])
def test_bad_settings_are_one_sentence(params, name):
    with pytest.raises(StudioError, match=f"The voice setting '{name}' must be"):
        get("voice").validate_params(params)
    with pytest.raises(StudioError, match="Unknown voice setting 'volume'"):
        get("voice").validate_params({"volume": 1})


def test_a_tune_that_would_learn_from_other_takes_is_refused():
    with pytest.raises(StudioError, match="kept takes only"):
        get("voice").parse_tune_settings({"prior_weight": 0.5})


def test_loading_refuses_what_is_not_a_voice(tmp_path, tiny_voice):
    medium = get("voice")
    with pytest.raises(StudioError, match="not a local folder"):
        medium.load(str(tmp_path / "nowhere"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "other" / "model.safetensors").write_bytes((tiny_voice / "model.safetensors").read_bytes())
    with pytest.raises(StudioError, match="'bert'"):
        medium.load(str(tmp_path / "other"))
