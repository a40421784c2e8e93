"""Takes written as files, the way the store keeps them, for scorer and export tests."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from studio.medium import Candidate


def candidate_from_files(root: Path, name: str, line: str, files: dict[str, bytes], seed: int = 0) -> Candidate:
    paths = {}
    for ext, data in files.items():
        path = root / f"{name}.{ext}"
        path.write_bytes(data)
        paths[ext] = str(path)
    return Candidate(id=name, medium="voice", prompt=line, seed=seed, params={}, version="base", model="tiny",
                     path=paths["wav"], files=paths)


def espeak_take(root: Path, name: str, line: str, speed: int = 160) -> Candidate:
    """A clean, intelligible clip: espeak-ng itself reading the line (22.05 kHz WAV)."""
    wav = root / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(wav), line], check=True)
    (root / f"{name}.txt").write_text(line + "\n")
    return Candidate(id=name, medium="voice", prompt=line, seed=0, params={}, version="base", model="espeak",
                     path=str(wav), files={"wav": str(wav), "txt": str(root / f"{name}.txt")})


def noise_take(root: Path, name: str, line: str, seconds: float = 2.5) -> Candidate:
    from studio.media.voice.audio import wav_bytes

    audio = np.random.default_rng(0).normal(0, 0.2, int(seconds * 22050)).astype(np.float32)
    return candidate_from_files(root, name, line, {"wav": wav_bytes(audio), "txt": (line + "\n").encode()})
