"""Export formats.

peft         the version's adapter folder (loads with stock peft onto the voice's network)
ljspeech     the kept takes as ``wavs/ID.wav`` + ``metadata.csv`` (``id|text|text``, no header),
             the layout Piper's and Coqui's trainers read
hf-datasets  Hugging Face's audio-folder layout: the WAVs + ``metadata.csv`` with a ``file_name``
             and a ``transcription`` column (``datasets.load_dataset("audiofolder", data_dir=...)``)

Everything is written into a temporary folder beside ``out_dir`` and moved into place at the end.
"""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Sequence

from ...errors import StudioError
from ...fsutil import atomic_folder
from ...medium import Candidate, Version
from .features import line_of, wav_of

FORMATS = ("peft", "ljspeech", "hf-datasets")


def _adapter(version: Version | None, tmp: Path) -> None:
    if version is None or not version.path:
        raise StudioError("The base voice has no adapter to export; export a tuned version (v1, v2, ...).")
    source = Path(version.path)
    if not (source / "adapter_config.json").exists():
        raise StudioError(f"The adapter folder {source} of {version.name} has no adapter_config.json.")
    shutil.copytree(source, tmp, dirs_exist_ok=True)


def _one_line(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def _ljspeech(curated: Sequence[Candidate], tmp: Path) -> None:
    (tmp / "wavs").mkdir()
    rows = []
    for c in curated:
        shutil.copyfile(wav_of(c), tmp / "wavs" / f"{c.id}.wav")
        text = _one_line(line_of(c))
        rows.append(f"{c.id}|{text}|{text}")
    (tmp / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _audiofolder(curated: Sequence[Candidate], tmp: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file_name", "transcription", "prompt", "seed", "version", "decision"])
    for c in curated:
        name = f"{c.id}.wav"
        shutil.copyfile(wav_of(c), tmp / name)
        writer.writerow([name, _one_line(line_of(c)), c.prompt, c.seed, c.version, c.decision])
    (tmp / "metadata.csv").write_text(buffer.getvalue(), encoding="utf-8")


def export(version: Version | None, fmt: str, out_dir: Path, curated: Sequence[Candidate]) -> list[Path]:
    if fmt not in FORMATS:
        raise StudioError(f"Unknown voice export format '{fmt}'; known: {', '.join(FORMATS)}.")
    if fmt != "peft" and not curated:
        raise StudioError("There are no kept voice takes to export; keep some first.")
    if fmt != "peft":
        for c in curated:
            wav_of(c)  # every file is there before anything is written
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        {"peft": lambda: _adapter(version, tmp), "ljspeech": lambda: _ljspeech(curated, tmp),
         "hf-datasets": lambda: _audiofolder(curated, tmp)}[fmt]()
    return sorted(p for p in out_dir.rglob("*") if p.is_file())
