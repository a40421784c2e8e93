"""The built-in voice reading lines: the line encoded once, then one take per seed.

Returns per take the audio (22.05 kHz float) and its alignment (ids, frames per id, pitch per id
in Hz) with the seed's draws, which the take keeps beside its WAV so a tune can learn its timing and
intonation with the draws that are drawn again at every reading divided out (``tune.py``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .reading import Style, centre, controls

SEMITONE = math.log(2) / 12


def speak(net, config, ids: Sequence[int], seeds: Sequence[int], params: dict, style: Style, iterations: int = 32,
          vocoder: str = "griffin-lim"):
    """[(audio, durations, pitch_hz, mel, draws)] for each seed, from the TinyVoice ``net`` (the base, or
    the PeftModel around it with an adapter on) whose ``VoiceConfig`` is ``config``; ``mel`` is the log mel
    the network made (frames, mels; float16), before the vocoder; ``draws`` what the seed drew (``draws()``)."""
    import torch

    from .audio import griffin_lim, normalise
    from .phonemes import voiced

    sounding = np.asarray(voiced(list(ids)), dtype=np.float64)

    count = len(ids)
    batch = torch.tensor([list(ids)], dtype=torch.long)
    lengths = torch.tensor([count])
    takes = []
    with torch.no_grad():  # one take at a time, so a take never depends on which seeds came with it
        x, mask = net.encode(batch, lengths)
        log_durations, pitch = net.predict(x, mask)
        for seed in seeds:
            pace, shift, spread, rhythm, intonation, generator = controls(seed, count, params, style)
            frames = torch.clamp(torch.exp(log_durations[0]) - 1, min=0) * pace * torch.exp(rhythm)
            durations = _at_least_one_frame(torch.round(frames).long()[None], batch)
            # normalised pitch: deviations scaled by the range, then shifted (semitones in log Hz)
            pitch_in = (pitch[0] * spread + intonation + shift * SEMITONE / config.pitch_std)[None]
            mel, _ = net.decode(x, mask, durations, pitch_in)
            hz = torch.exp(pitch_in[0] * config.pitch_std + config.pitch_mean)
            if vocoder == "pitched":  # the harmonics of the pitch read, under the spectrogram's envelope
                frames_hz = np.repeat(hz.numpy(), durations[0].numpy())
                audio = griffin_lim(mel[0], iterations=iterations, generator=generator, pitch_hz=frames_hz,
                                    voiced=np.repeat(sounding, durations[0].numpy()))
            else:
                audio = griffin_lim(mel[0], iterations=iterations, generator=generator)
            takes.append((normalise(audio), durations[0].tolist(), [round(float(h), 1) for h in hz],
                          mel[0].numpy().astype("float16"),
                          draws(pace, shift, spread, rhythm, intonation, centre(params, style))))
    return takes


def draws(pace, shift, pitch_range, rhythm, intonation, centred) -> dict:
    """The seed's draws as the take's alignment keeps them: the line's pace, shift (semitones) and range,
    the centre the settings and style put them at, and the per-id log-duration and pitch noise."""
    return {"pace": pace, "shift": shift, "range": pitch_range,
            "centre": {"pace": centred[0], "shift": centred[1], "range": centred[2]},
            "rhythm": [round(float(r), 5) for r in rhythm], "intonation": [round(float(i), 5) for i in intonation]}


def _at_least_one_frame(durations, ids):
    """Every phoneme (not the pauses between them, id 0) lasts at least one frame: none is swallowed."""
    import torch

    return torch.where((ids != 0) & (durations < 1), torch.ones_like(durations), durations)
