"""Export formats: ``peft`` (the version's adapter folder) and ``dataset`` (the curated
MIDI and WAV files with a ``metadata.jsonl`` that names each file, its prompt, seed and scores)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ...errors import StudioError
from ...fsutil import atomic_write_bytes, atomic_write_text
from ...medium import Candidate, Version

FORMATS = ("peft", "dataset")


def export(version: Version | None, fmt: str, out_dir: Path, curated: Sequence[Candidate]) -> list[Path]:
    if fmt not in FORMATS:
        raise StudioError(f"Unknown music export format '{fmt}'; known: {', '.join(FORMATS)}.")
    out_dir = Path(out_dir)
    if fmt == "peft":
        if version is None or not version.path:
            raise StudioError("The base model has no adapter to export; export a tuned version (v1, v2, ...).")
        source = Path(version.path)
        if not (source / "adapter_config.json").exists():
            raise StudioError(f"The adapter folder {source} of {version.name} has no adapter_config.json.")
        files = [p for p in sorted(source.iterdir()) if p.is_file()]
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in files:
            atomic_write_bytes(out_dir / path.name, path.read_bytes())
            written.append(out_dir / path.name)
        return written
    if not curated:
        raise StudioError("There are no kept music pieces to export.")
    plan = []  # check every file before writing any
    for c in curated:
        sources = {ext: Path(p) for ext, p in (c.files or {c.path.rsplit(".", 1)[-1]: c.path}).items()
                   if ext in ("mid", "wav")}
        for ext, path in sources.items():
            if not path.exists():
                raise StudioError(f"The .{ext} file of candidate {c.id} is missing: {path}.")
        plan.append((c, sources))
    out_dir.mkdir(parents=True, exist_ok=True)
    written, lines = [], []
    for c, sources in plan:
        row = {}
        for ext, path in sources.items():
            name = f"{c.id}.{ext}"
            shutil.copyfile(path, out_dir / name)
            written.append(out_dir / name)
            row["file_name" if ext == "wav" else "midi_file"] = name
        row.update(prompt=c.prompt, seed=c.seed, version=c.version, scores=c.scores, decision=c.decision,
                   params=c.params)
        lines.append(json.dumps(row, sort_keys=True))
    atomic_write_text(out_dir / "metadata.jsonl", "\n".join(lines) + "\n")
    return written + [out_dir / "metadata.jsonl"]
