"""The prosody a take is measured by: the speaking rate counts the pauses inside a line, as words a minute do."""
from __future__ import annotations

import numpy as np

from voice_helpers import candidate_from_files
from studio.media.voice.audio import wav_bytes
from studio.media.voice.features import prosody, syllables

LINE = "The weather will be cloudy with a chance of rain."


def test_the_speaking_rate_counts_the_pause_inside_the_line(tmp_path):
    rate = 22050
    t = np.arange(int(0.8 * rate)) / rate
    burst = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    silence = np.zeros(int(0.6 * rate), dtype=np.float32)
    edge = np.zeros(int(0.3 * rate), dtype=np.float32)
    take = candidate_from_files(tmp_path, "take", LINE, {
        "wav": wav_bytes(np.concatenate([edge, burst, silence, burst, edge])), "txt": (LINE + "\n").encode()})
    found = prosody(take)
    assert abs(found["span_seconds"] - 2.2) < 0.05  # first sound to last: both bursts and the pause between
    assert abs(found["speech_seconds"] - 1.6) < 0.05  # the sound alone
    assert abs(found["rate"] - syllables(LINE) / 2.2) < 0.15
    assert abs(found["pause_share"] - 0.6 / 2.2) < 0.03


def test_the_vocoder_keeps_a_harmonic_voices_pitch():
    """A vowel-like tone through the built-in voice's own path to sound (log mel, then Griffin-Lim) is heard at
    its pitch: what the built-in voice reads reaches the sound as far as its decoder puts it in the mel."""
    import torch

    from studio.media.voice.audio import SAMPLE_RATE, griffin_lim, log_mel, pitch_track

    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    for f0 in (94.0, 133.0, 188.0):
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k * np.exp(-((k * f0 - 700) / 900) ** 2) for k in range(1, 60))
        mel = log_mel(torch.from_numpy((0.5 * tone / np.abs(tone).max()).astype(np.float32)))
        sound = np.asarray(griffin_lim(mel, iterations=32, generator=torch.Generator().manual_seed(0)))
        heard = pitch_track(sound, SAMPLE_RATE)
        assert abs(12 * np.log2(np.median(heard[heard > 0]) / f0)) < 0.5
