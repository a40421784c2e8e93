"""The fake medium with a sound file beside each colour word: its cards are sound cards with a player."""
from __future__ import annotations

import io
import math
import struct
import wave

from fake_medium import FakeMedium


def tone(seconds: float = 2.0, rate: int = 8000) -> bytes:
    """A quiet 440 Hz tone as WAV bytes."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                 for i in range(int(seconds * rate))))
    return out.getvalue()


class FakeSound(FakeMedium):
    name = "fakesound"

    def generate(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        made = super().generate(handle, prompt, seeds, params, adapter, strength)
        for g in made:
            g.files = {**g.files, "wav": tone()}
        return made
