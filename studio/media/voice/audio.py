"""Sound for the voice medium: mel spectrograms, the vocoder (a pitched source, Griffin-Lim), a pitch tracker,
WAV and PNG files.

numpy for analysis (scorers, pictures), torch for the model's mel and its vocoder.  The mel
settings are the built-in voice's (22.05 kHz, hop 256, 80 bands up to 8 kHz).
"""
from __future__ import annotations

import functools
import io

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
N_MELS = 80
F_MAX = 8000.0
LOG_FLOOR = 1e-5
PITCH_MIN, PITCH_MAX = 65.0, 400.0  # Hz: the tracker's range (speaking voices)
GLIDE = 7  # frames (81 ms) the pitched vocoder's source averages the pitch read over: a glide, not steps


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                f_max: float = F_MAX) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, area-normalised (Slaney)."""
    def to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(f_max), n_mels + 2))
    filters = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        rise = (bins - left) / (centre - left)
        fall = (right - bins) / (right - centre)
        filters[i] = np.maximum(0, np.minimum(rise, fall)) * 2.0 / (right - left)
    return filters.astype(np.float32)


def log_mel(audio, filters=None):
    """torch: (samples,) float audio -> (frames, n_mels) log mel; frames = samples // HOP (+1)."""
    import torch

    audio = torch.as_tensor(audio, dtype=torch.float32)
    filters = torch.as_tensor(mel_filters() if filters is None else filters)
    window = torch.hann_window(N_FFT)
    spec = torch.stft(audio, N_FFT, HOP, N_FFT, window, center=True, return_complex=True).abs()
    return torch.log(torch.clamp(filters @ spec, min=LOG_FLOOR)).T


def griffin_lim(mel, iterations: int = 32, power: float = 1.3, generator=None, momentum: float = 0.99,
                pitch_hz=None, voiced=None, smooth: int = 15):
    """torch: (frames, n_mels) log mel -> float audio.  The mel is mapped back to a linear
    spectrogram by the filters' pseudo-inverse, sharpened by ``power``, then phase is found by
    fast Griffin-Lim (Perraudin et al. 2013), from random phases; or, given the pitch read per frame
    (``pitch_hz``, ``voiced``), the spectrogram's envelope (smoothed over ``smooth`` bins) is filled with
    the harmonics of a source sounding that pitch (``source``), which also gives the first phases."""
    import torch

    magnitude = torch.clamp(_mel_inverse() @ torch.exp(mel.T.float()), min=0.0) ** power
    window = torch.hann_window(N_FFT)
    if pitch_hz is None:
        angles = torch.rand(magnitude.shape, generator=generator) * 2 * np.pi
    else:
        noise = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        start = torch.as_tensor(source(pitch_hz, voiced, (magnitude.shape[1] - 1) * HOP, noise), dtype=torch.float32)
        excitation = torch.stft(start, N_FFT, HOP, N_FFT, window, center=True, return_complex=True)
        angles, level = excitation.angle(), excitation.abs()
        magnitude = _smoothed(magnitude, smooth) * level / torch.clamp(_smoothed(level, smooth), min=1e-6)
    spec = torch.polar(magnitude, angles)
    previous = torch.zeros_like(spec)
    length = (magnitude.shape[1] - 1) * HOP
    for _ in range(iterations):
        audio = torch.istft(spec, N_FFT, HOP, N_FFT, window, center=True, length=length)
        rebuilt = torch.stft(audio, N_FFT, HOP, N_FFT, window, center=True, return_complex=True)
        accelerated = rebuilt + momentum * (rebuilt - previous)
        previous = rebuilt
        spec = accelerated * (magnitude / torch.clamp(accelerated.abs(), min=1e-8))
    audio = torch.istft(spec, N_FFT, HOP, N_FFT, window, center=True, length=length)
    return audio.numpy()


def _smoothed(spectrogram, width: int):
    """torch: (bins, frames) magnitudes averaged over ``width`` neighbouring bins: the envelope, harmonics gone."""
    import torch

    kernel = torch.ones(1, 1, width) / width
    return torch.nn.functional.conv1d(spectrogram.T[:, None], kernel, padding=width // 2)[:, 0].T


def source(pitch_hz, voiced, length: int, noise: np.random.Generator, sample_rate: int = SAMPLE_RATE,
           hop: int = HOP, glide: int = GLIDE) -> np.ndarray:
    """float audio of ``length`` samples: where a frame is ``voiced``, a band-limited pulse train at the frame's
    ``pitch_hz`` (averaged over ``glide`` frames on a log scale, so a phoneme's pitch glides into the next one's
    rather than steps; its phase carried smoothly), elsewhere white noise: the excitation of a source-filter voice."""
    frames = np.arange(len(pitch_hz)) * hop
    at = np.arange(length)
    log_f0 = np.log(np.clip(np.asarray(pitch_hz, dtype=np.float64), PITCH_MIN / 2, None))
    if glide > 1 and len(log_f0) > 1:
        log_f0 = np.convolve(np.pad(log_f0, glide // 2, mode="edge"), np.ones(glide) / glide, mode="valid")[:len(frames)]
    f0 = np.exp(np.interp(at, frames, log_f0))
    mix = np.interp(at, frames, np.asarray(voiced, dtype=np.float64))
    phase = np.mod(2 * np.pi * np.cumsum(f0) / sample_rate, 2 * np.pi)
    count = np.maximum(1, np.floor(0.95 * sample_rate / 2 / f0))  # harmonics under Nyquist
    # sum of cos(k phase) for k = 1 .. count, in closed form (the Dirichlet kernel): one pass, any pitch
    half = np.sin(phase / 2)
    near = np.abs(half) < 1e-6
    pulses = np.where(near, count, (np.sin((count + 0.5) * phase) / np.where(near, 1.0, 2 * half)) - 0.5)
    pulses /= np.sqrt(count)
    return mix * pulses + (1 - mix) * noise.standard_normal(length)


@functools.lru_cache(maxsize=1)
def _mel_inverse():
    import torch

    return torch.linalg.pinv(torch.as_tensor(mel_filters()))


def normalise(audio: np.ndarray, peak: float = 0.9) -> np.ndarray:
    top = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return (audio * (peak / top)).astype(np.float32) if top > 0 else audio.astype(np.float32)


def pitch_track(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = HOP, voicing: float = 1.38,
                harmonics: int = 8, decay: float = 0.84) -> np.ndarray:
    """F0 in Hz per frame (0 where unvoiced) by subharmonic summation (Hermes 1988): for each
    candidate F0 the weighted sum of the magnitude spectrum at its harmonics.  It reads only
    magnitudes, so it also follows Griffin-Lim speech, whose phases break time-domain trackers.
    A frame is voiced when its best sum stands ``voicing`` times above the median candidate's
    (white noise stays under 1.3)."""
    audio = np.asarray(audio, dtype=np.float64)
    n_fft = 2 * N_FFT * sample_rate // SAMPLE_RATE
    count = max(1, len(audio) // hop + 1)
    padded = np.pad(audio, (n_fft // 2, n_fft))
    frames = np.stack([padded[i * hop:i * hop + n_fft] for i in range(count)]) * np.hanning(n_fft)
    magnitude = np.sqrt(np.abs(np.fft.rfft(frames, axis=1)))
    energy = np.sqrt(np.mean(frames ** 2, axis=1))
    candidates = np.geomspace(PITCH_MIN, PITCH_MAX, 96)
    where = candidates[:, None] * np.arange(1, harmonics + 1)[None] * n_fft / sample_rate  # (C, H) in bins
    low = np.clip(np.floor(where).astype(int), 0, magnitude.shape[1] - 2)
    fraction = where - low
    sampled = magnitude[:, low] * (1 - fraction) + magnitude[:, low + 1] * fraction  # (T, C, H)
    salience = (sampled * decay ** np.arange(harmonics)).sum(axis=2)
    ratio = salience.max(axis=1) / (np.median(salience, axis=1) + 1e-12)
    quiet = max(1e-4, 0.05 * float(np.percentile(energy, 95)))
    pitch = np.where((ratio > voicing) & (energy > quiet), candidates[salience.argmax(axis=1)], 0.0)
    voiced = pitch > 0
    if voiced.sum() > 2:  # octave errors: fold every frame into the octave around the take's median
        centre = float(np.median(pitch[voiced]))
        folded = pitch[voiced]
        folded = np.where(folded > 1.5 * centre, folded / 2, np.where(folded < 0.67 * centre, folded * 2, folded))
        pitch[voiced] = np.clip(folded, PITCH_MIN, PITCH_MAX)
        runs = np.convolve(voiced.astype(float), np.ones(3), mode="same")
        pitch[runs < 2] = 0.0  # a lone voiced frame is a spike, not a syllable
    return pitch


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1, 1), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def read_wav(path) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)


def picture(audio: np.ndarray, pitch: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = HOP,
            width: int = 512, height: int = 160) -> bytes:
    """A PNG: the waveform's envelope in grey, the pitch line (log scale, 65-400 Hz) in orange."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (250, 250, 247))
    draw = ImageDraw.Draw(image)
    middle = height // 2
    if len(audio):
        columns = np.array_split(np.abs(audio), width)
        for x, column in enumerate(columns):
            top = float(column.max()) if len(column) else 0.0
            half = int(top * (height * 0.45))
            draw.line([(x, middle - half), (x, middle + half)], fill=(150, 160, 170))
    if len(pitch):
        low, high = np.log(PITCH_MIN), np.log(PITCH_MAX)
        points = []
        for i, f0 in enumerate(pitch):
            x = int(i * width / len(pitch))
            if f0 <= 0:
                if len(points) > 1:
                    draw.line(points, fill=(220, 110, 30), width=2)
                points = []
                continue
            y = int(height - 6 - (np.log(f0) - low) / (high - low) * (height - 12))
            points.append((x, y))
        if len(points) > 1:
            draw.line(points, fill=(220, 110, 30), width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
