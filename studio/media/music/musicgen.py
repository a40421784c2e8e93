"""MusicGen through transformers: text to WAV, and clips to codes for a LoRA tune.

One seed per call to ``generate`` (transformers samples from one global generator, so a
batch could not give each seed its own candidate); the clip's length is ``duration``
seconds at the audio encoder's frame rate, bounded by the decoder's positions.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import StudioError
from ...medium import Generated
from .synth import PEAK, wav_bytes


def check_duration(handle, duration: float) -> int:
    """Frames for ``duration`` seconds; StudioError past the model's limit."""
    if duration <= 0:
        raise StudioError("The duration must be a positive number of seconds.")
    if duration > handle.max_seconds:
        raise StudioError(f"{duration:g} s is beyond this model's limit of {handle.max_seconds:.1f} s.")
    return max(1, int(round(duration * handle.frame_rate)))


def generate_audio(handle, prompt: str, seeds: Sequence[int], params: dict[str, Any]) -> list[Generated]:
    import torch

    frames = check_duration(handle, float(params["duration"]))
    inputs = handle.tokenizer([prompt], return_tensors="pt", padding=True).to(handle.device)
    options = dict(do_sample=float(params["temperature"]) > 0, max_new_tokens=frames,
                   guidance_scale=float(params["guidance_scale"]) or None)
    if options["do_sample"]:
        options.update(temperature=float(params["temperature"]), top_k=int(params["top_k"]) or None,
                       top_p=float(params["top_p"]) if float(params["top_p"]) < 1.0 else None)
    out = []
    for seed in seeds:
        torch.manual_seed(int(seed))
        if handle.device.startswith("cuda"):
            torch.cuda.manual_seed_all(int(seed))
        with torch.no_grad():
            audio = handle.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                          **options)
        signal = audio[0].float().mean(dim=0).cpu().numpy().astype(np.float64)  # mono
        peak = float(np.abs(signal).max()) if signal.size else 0.0
        if peak > 0:
            signal = signal * (PEAK / peak)
        out.append(Generated(seed=int(seed), files={"wav": wav_bytes(signal.astype(np.float32), handle.sampling_rate)}))
    return out


def read_clip(path: str, sampling_rate: int) -> np.ndarray:
    """A WAV as mono float at the model's rate; silence raises StudioError."""
    import soundfile
    from scipy.signal import resample_poly

    try:
        signal, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        raise StudioError(f"{path} is not a readable audio file ({type(exc).__name__}).") from None
    signal = signal.mean(axis=1)
    if signal.size == 0 or float(np.abs(signal).max()) < 1e-4:
        raise StudioError(f"{path} is silent; there is nothing to learn from it.")
    if rate != sampling_rate:
        from math import gcd

        g = gcd(int(rate), int(sampling_rate))
        signal = resample_poly(signal, sampling_rate // g, rate // g).astype(np.float32)
    return signal


def encode_clips(model, clips: list[np.ndarray], device: str):
    """Codes (n, K, T) from the model's own audio encoder, one clip at a time (lengths differ)."""
    import torch

    codes = []
    with torch.no_grad():
        for clip in clips:
            values = torch.from_numpy(clip)[None, None].to(device)
            encoded = model.audio_encoder.encode(values)
            codes.append(encoded.audio_codes[0, 0].cpu())  # (K, T)
    return codes


def delayed_labels(codes, pad_id: int):
    """MusicGen's delay pattern: codebook k is shifted right by k; (T + K - 1, K) with -100 outside."""
    import torch

    n_codebooks, length = codes.shape
    labels = torch.full((length + n_codebooks - 1, n_codebooks), -100, dtype=torch.long)
    for k in range(n_codebooks):
        labels[k:k + length, k] = codes[k]
    return labels
