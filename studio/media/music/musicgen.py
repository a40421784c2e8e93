"""MusicGen through transformers: text to WAV, and clips to codes for a LoRA tune.

All seeds of a call go through one ``generate`` (one decoder pass per frame for the whole
batch), and each seed still gets its own clip: transformers would sample every row from one
global generator, so the studio samples instead (``PerSeedSampler``, the last logits
processor): each row's next code is drawn from its own seed's generator by inverse CDF, after
temperature, top-k and top-p, and ``generate`` only takes that choice.  A seed draws the same
random numbers alone or in a batch, so it gives the same clip either way on the same device.
The clip's length is ``duration`` seconds at the audio encoder's frame rate, bounded by the
decoder's positions.
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


class PerSeedSampler:
    """A logits processor that samples each row from its seed's generator and returns that choice.

    MusicGen's rows are (seed, codebook) pairs, ``rows_per_seed`` codebooks per seed, in seed
    order.  The returned scores are 0 at the drawn code and -inf elsewhere, so greedy decoding
    keeps it.
    """

    def __init__(self, seeds: Sequence[int], rows_per_seed: int, temperature: float, top_k: int, top_p: float,
                 device: str):
        import torch

        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.rows_per_seed, self.temperature, self.top_k, self.top_p = rows_per_seed, temperature, top_k, top_p

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float() / self.temperature
        if self.top_k and self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        if self.top_p < 1.0:  # keep the smallest set of codes whose mass reaches top_p
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= self.top_p
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
            probs = probs / probs.sum(-1, keepdim=True)
        if probs.shape[0] != len(self.generators) * self.rows_per_seed:
            raise RuntimeError(f"expected {len(self.generators)} x {self.rows_per_seed} rows, got {probs.shape[0]}")
        draws = torch.cat([torch.rand(self.rows_per_seed, generator=g, device=g.device) for g in self.generators])
        cdf = probs.cumsum(-1)
        codes = (cdf < draws.to(cdf.device)[:, None] * cdf[:, -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter(-1, codes[:, None], 0.0)


def _processors(sampler):
    """A processor list that keeps ``sampler`` last when MusicGen adds its guidance processor."""
    from transformers import LogitsProcessorList

    class SamplerLast(LogitsProcessorList):
        def append(self, processor):
            self.insert(len(self) - 1, processor)

    return SamplerLast([sampler])


def generate_audio(handle, prompt: str, seeds: Sequence[int], params: dict[str, Any]) -> list[Generated]:
    import torch

    frames = check_duration(handle, float(params["duration"]))
    seeds = [int(s) for s in seeds]
    if not seeds:
        return []
    inputs = handle.tokenizer([prompt] * len(seeds), return_tensors="pt", padding=True).to(handle.device)
    options = dict(do_sample=False, max_new_tokens=frames, guidance_scale=float(params["guidance_scale"]) or None)
    if float(params["temperature"]) > 0:
        sampler = PerSeedSampler(seeds, int(handle.model.config.decoder.num_codebooks),
                                 float(params["temperature"]), int(params["top_k"]), float(params["top_p"]),
                                 handle.device)
        options["logits_processor"] = _processors(sampler)
    with torch.no_grad():
        audio = handle.model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                      **options)
    out = []
    for seed, row in zip(seeds, audio):
        signal = row.float().mean(dim=0).cpu().numpy().astype(np.float64)  # mono
        peak = float(np.abs(signal).max()) if signal.size else 0.0
        if peak > 0:
            signal = signal * (PEAK / peak)
        out.append(Generated(seed=seed, files={"wav": wav_bytes(signal.astype(np.float32), handle.sampling_rate)}))
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
