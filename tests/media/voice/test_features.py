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


def test_the_pitched_vocoder_sounds_the_pitch_read_over_the_mels_own():
    """Given the pitch read, the vocoder fills the mel's envelope with that pitch's harmonics: a tone's mel
    vocoded at its own pitch is heard there, and at another pitch (a tune that moved the reading) it is
    heard at the pitch read, where Griffin-Lim alone keeps the mel's."""
    import torch

    from studio.media.voice.audio import SAMPLE_RATE, griffin_lim, log_mel, pitch_track

    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * k * 110.0 * t) / k * np.exp(-((k * 110.0 - 700) / 900) ** 2) for k in range(1, 60))
    mel = log_mel(torch.from_numpy((0.5 * tone / np.abs(tone).max()).astype(np.float32)))
    for read in (110.0, 82.0, 147.0):
        sound = np.asarray(griffin_lim(mel, iterations=8, generator=torch.Generator().manual_seed(0),
                                       pitch_hz=np.full(mel.shape[0], read), voiced=np.ones(mel.shape[0])))
        heard = pitch_track(sound, SAMPLE_RATE)
        assert abs(12 * np.log2(np.median(heard[heard > 0]) / read)) < 0.5, read


def test_the_source_is_the_sum_of_the_harmonics_under_nyquist():
    from studio.media.voice.audio import SAMPLE_RATE, source

    pitch = np.r_[np.full(20, 95.0), np.full(20, 151.0)]
    made = source(pitch, np.ones(40), 39 * 256, np.random.default_rng(0), glide=1)  # steps, as read
    f0 = np.exp(np.interp(np.arange(39 * 256), np.arange(40) * 256, np.log(pitch)))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    count = np.floor(0.95 * SAMPLE_RATE / 2 / f0)
    summed = sum(np.where(k <= count, np.cos(k * phase), 0.0) for k in range(1, int(count.max()) + 1))
    assert np.allclose(made, summed / np.sqrt(count), atol=1e-6)
    silent = source(pitch, np.zeros(40), 39 * 256, np.random.default_rng(0))  # unvoiced: noise, no pitch
    assert abs(np.corrcoef(silent, made)[0, 1]) < 0.05
    glides = source(pitch, np.ones(40), 39 * 256, np.random.default_rng(0), glide=7)  # the step spread over 7 frames
    assert np.allclose(glides[:16 * 256], made[:16 * 256]) and not np.allclose(glides[18 * 256:22 * 256],
                                                                               made[18 * 256:22 * 256])


def test_only_sounding_phonemes_are_voiced():
    from studio.media.voice.phonemes import SYMBOL_ID, SYMBOLS, ids_for_phonemes, voiced

    ids = ids_for_phonemes("sɪŋ fæst.")
    marks = dict(zip(ids, voiced(ids)))
    by_symbol = {SYMBOLS[i]: v for i, v in marks.items()}
    assert by_symbol["ɪ"] and by_symbol["ŋ"] and by_symbol["æ"]
    assert not by_symbol["s"] and not by_symbol["f"] and not by_symbol["t"] and not by_symbol["."]
    between = ids.index(SYMBOL_ID["ɪ"]) + 1  # the pause between ɪ and ŋ sounds, the one after ŋ (before a space) not
    assert voiced(ids)[between] and not voiced(ids)[between + 2]
