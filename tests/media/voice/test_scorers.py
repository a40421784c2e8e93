"""Voice scorers: in [0, 1], and they mean what they say (clean speech beats noise)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from voice_helpers import espeak_take, noise_take
from studio.media import get
from studio.media.voice.features import syllables
from studio.media.voice.recognise import character_error_rate, normalise_text
from studio.medium import ScoringContext

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
LINE = "The weather will be cloudy with a chance of rain."


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))


def context(**options):
    return ScoringContext(medium=get("voice"), favourites=[], decided=[], options=options)


def test_character_error_rate():
    assert character_error_rate("Hello, World!", "hello world") == 0.0
    assert character_error_rate("abcd", "abed") == 0.25
    assert character_error_rate("ab", "") == 1.0
    assert normalise_text("Don't  STOP-now.") == "don't stop now"
    assert syllables("The quick brown fox jumps over the lazy dog.") == 11


def test_clean_speech_is_understood_and_noise_is_not(tmp_path):
    clean, noise = espeak_take(tmp_path, "clean", LINE), noise_take(tmp_path, "noise", LINE)
    scorers = get("voice").scorers()
    for name in ("intelligibility", "naturalness", "pitch_range", "pace"):
        clean_score, noise_score = scorers[name](context())([clean, noise])
        assert 0.0 <= noise_score <= 1.0 and 0.0 <= clean_score <= 1.0, name
        if name in ("intelligibility", "naturalness", "pitch_range"):
            assert clean_score > noise_score + 0.2, (name, clean_score, noise_score)
    assert scorers["intelligibility"](context())([clean])[0] > 0.5


def test_pace_prefers_the_reading_near_its_target(tmp_path):
    slow, quick = espeak_take(tmp_path, "slow", LINE, speed=110), espeak_take(tmp_path, "quick", LINE, speed=260)
    pace = get("voice").scorers()["pace"]
    assert pace(context(syllables_per_second=2.5))([slow, quick])[0] > pace(context(syllables_per_second=2.5))([quick])[0]
    assert pace(context(syllables_per_second=7))([quick])[0] > pace(context(syllables_per_second=7))([slow])[0]


def test_likeness_to_a_reference_clip(tmp_path):
    reference = espeak_take(tmp_path, "reference", "Good morning, how are you today?")
    same_voice, noise = espeak_take(tmp_path, "same", LINE), noise_take(tmp_path, "noise", LINE)
    score = get("voice").scorers()["likeness"](context(reference=reference.path))
    similar, different = score([same_voice, noise])
    assert 0 <= different < similar <= 1
    from studio.errors import StudioError

    with pytest.raises(StudioError, match="needs options\\['reference'\\]"):
        get("voice").scorers()["likeness"](context())


def test_preference_learns_the_hand_decisions(tmp_path):
    slow = [espeak_take(tmp_path, f"slow{i}", LINE, speed=100 + 5 * i) for i in range(2)]
    quick = [espeak_take(tmp_path, f"quick{i}", LINE, speed=250 + 10 * i) for i in range(2)]
    for c in slow:
        c.decision = "hand_accepted"
    for c in quick:
        c.decision = "hand_rejected"
    ctx = ScoringContext(medium=get("voice"), favourites=slow, decided=slow + quick)
    score = get("voice").scorers()["preference"](ctx)
    new_slow, new_quick = espeak_take(tmp_path, "s", LINE, speed=115), espeak_take(tmp_path, "q", LINE, speed=245)
    a, b = score([new_slow, new_quick])
    assert a > 0.5 > b
    assert get("voice").scorers()["preference"](context())([new_slow]) == [0.5]


def test_clarity_is_the_recognisers_confidence_in_the_line(tmp_path):
    from studio.media.voice.audio import read_wav, wav_bytes
    from studio.media.voice.recognise import clarity, transcribe
    from voice_helpers import candidate_from_files

    clean, rate = read_wav(espeak_take(tmp_path, "espeak", LINE).path)
    rng = np.random.default_rng(1)

    def take(name, noise):  # espeak's digital silence dithered: the recogniser hears it as a recording
        audio = clean + rng.normal(0, noise, len(clean)).astype(np.float32)
        return candidate_from_files(tmp_path, name, LINE, {"wav": wav_bytes(audio, rate), "txt": (LINE + "\n").encode()})

    takes = [take("quiet", 0.003), take("hissing", 0.05)]
    audio, rate = read_wav(takes[0].path)
    heard = transcribe(audio, rate)
    said = clarity(LINE, audio, rate)
    assert 0 < said <= 1
    other = espeak_take(tmp_path, "other", "Seven purple elephants danced across the frozen lake.")
    assert said > 2 * clarity(LINE, *read_wav(other.path))  # other words: the line fits the take badly
    assert said > 2 * clarity(LINE, *read_wav(noise_take(tmp_path, "noise", LINE).path))
    assert clarity("zyxqv", audio, rate) == 0.0  # nothing of the line is in the recogniser's dictionary
    assert transcribe(audio, rate) == heard  # the alignment leaves the recogniser listening freely again
    clear = get("voice").scorers()["clarity"](context())(takes)
    assert clear[0] == pytest.approx(said) and clear[0] > clear[1] > 0, clear
