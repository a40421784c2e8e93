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
