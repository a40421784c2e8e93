"""Takes of a line: WAV (the sound), PNG (its waveform and pitch line), TXT (the line read),
JSON (the alignment a tune learns from: ids, frames per id, pitch per id)."""
from __future__ import annotations

import io
import json
from typing import Sequence

import numpy as np

from ...errors import StudioError
from ...medium import Generated
from .model import VoiceHandle
from .reading import split_style

MAX_CHARACTERS = 400  # a take is one line, not a chapter


def _files(audio: np.ndarray, rate: int, line: str, alignment: dict, mel: np.ndarray | None = None
           ) -> dict[str, bytes]:
    """The take's files; ``mel`` (the built-in voice's own spectrogram) as ``npy``: what a tune learns from."""
    from .audio import HOP, picture, pitch_track, wav_bytes

    pitch = pitch_track(audio, rate, hop=max(1, HOP * rate // 22050))
    files = {"wav": wav_bytes(audio, rate), "png": picture(audio, pitch, rate),
             "txt": (line + "\n").encode("utf-8"), "json": json.dumps(alignment).encode("utf-8")}
    if mel is not None:
        buffer = io.BytesIO()
        np.save(buffer, mel, allow_pickle=False)
        files["npy"] = buffer.getvalue()
    return files


def generate_tiny(handle: VoiceHandle, prompt: str, seeds: Sequence[int], params: dict) -> list[Generated]:
    import torch

    from .phonemes import text_to_ids
    from .speak import speak

    style, line = split_style(prompt)
    if len(line) > MAX_CHARACTERS:
        raise StudioError(f"A line to speak is at most {MAX_CHARACTERS} characters; split longer text into lines.")
    ids = text_to_ids(line)
    out = []
    batch = max(1, int(params["batch_size"]))
    for start in range(0, len(seeds), batch):
        part = list(seeds[start:start + batch])
        takes = speak(handle.net, handle.model.config, ids, part, params, style,
                      iterations=int(params["vocoder_iterations"]), vocoder=params["vocoder"])
        for seed, (audio, durations, pitch, mel, draws) in zip(part, takes):
            alignment = {"line": line, "style": list(style.words), "ids": ids, "durations": durations, "pitch_hz": pitch,
                         "draws": draws}
            out.append(Generated(seed, _files(audio, 22050, line, alignment, mel)))
    del torch
    return out


def generate_speecht5(handle: VoiceHandle, prompt: str, seeds: Sequence[int], params: dict) -> list[Generated]:
    """SpeechT5 reads the line; a seed picks the speaker (when several) and nudges its embedding, and
    seeds the decoder pre-net's dropout, which SpeechT5 keeps on when it speaks."""
    import torch

    from .audio import normalise

    style, line = split_style(prompt)
    inputs = handle.processor(text=line, return_tensors="pt")
    out = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(int(seed))
        speakers = handle.speakers
        speaker = speakers[int(torch.randint(len(speakers), (1,), generator=generator))].clone()
        speaker = speaker + 0.05 * float(params["variation"]) * torch.randn(speaker.shape, generator=generator)
        torch.manual_seed(int(seed))
        with torch.no_grad():
            speech = handle.net.generate_speech(inputs["input_ids"].to(handle.device), speaker[None].to(handle.device),
                                                vocoder=handle.vocoder, maxlenratio=float(params["max_length_ratio"]))
        audio = normalise(speech.reshape(-1).cpu().numpy().astype(np.float32))
        alignment = {"line": line, "style": list(style.words)}
        out.append(Generated(seed, _files(audio, handle.sample_rate, line, alignment)))
    return out


def generate(handle: VoiceHandle, prompt: str, seeds: Sequence[int], params: dict, adapter: str | None = None,
             strength: float = 1.0) -> list[Generated]:
    """One take per seed with ``adapter`` (a version) active at ``strength``, by the built-in voice, SpeechT5 or CSM."""
    from ...adapters import adapter_active

    with adapter_active(handle, adapter, strength):
        if handle.kind == "tiny":
            return generate_tiny(handle, prompt, seeds, params)
        if handle.kind == "csm":
            from .codec_lm import generate_csm

            return generate_csm(handle, prompt, seeds, params)
        return generate_speecht5(handle, prompt, seeds, params)
