"""The built-in voice (the network in studio/media/voice/assets): a take is heard at the pitch it reads."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile

from studio.media import get
from studio.media.voice.phonemes import espeak_available, voiced

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


def waveform_pitch(audio: np.ndarray, rate: int) -> float:
    """The median fundamental (Hz) by autocorrelation over 60 ms windows, 55-400 Hz: the period the waveform
    repeats at, which a voice whose harmonics blur above a few hundred Hz gets an octave wrong."""
    size, hop = int(0.06 * rate), int(0.01 * rate)
    shortest, longest = int(rate / 400), int(rate / 55)
    found = []
    for start in range(0, len(audio) - size, hop):
        window = audio[start:start + size] * np.hanning(size)
        ac = np.correlate(window, window, "full")[size - 1:]
        if ac[0] <= 1e-6 * size:
            continue
        lag = shortest + int(np.argmax(ac[shortest:longest]))
        if ac[lag] >= 0.5 * ac[0]:
            found.append(rate / lag)
    return float(np.median(found))


def test_a_take_is_heard_at_the_pitch_it_reads():
    """Low and high shifts alike: Griffin-Lim alone kept the blurred harmonics, heard an octave up
    (docs/voice.md, "The vocoder")."""
    medium = get("voice")
    handle = medium.load(medium.default_model())
    for shift in (-4, 0, 5):
        takes = medium.generate(handle, "The quick brown fox jumps over the lazy dog.", [0, 1, 2],
                                medium.validate_params({"pitch": shift}))
        for take in takes:
            alignment = json.loads(take.files["json"])
            sounding = np.repeat(voiced(alignment["ids"]), alignment["durations"])
            read = np.median(np.repeat(alignment["pitch_hz"], alignment["durations"])[sounding])
            audio, rate = soundfile.read(io.BytesIO(take.files["wav"]))
            assert abs(12 * np.log2(waveform_pitch(audio, rate) / read)) < 1.5, (shift, take.seed)
