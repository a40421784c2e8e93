"""Export formats: ``peft`` (the adapter folder), ``merged`` (a full model folder), ``jsonl``.

Everything is written into a temporary folder beside ``out_dir`` and moved into place at
the end, so a failed export leaves nothing behind.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ...errors import StudioError
from ...fsutil import atomic_folder
from ...medium import Candidate, Version
from .embedding import candidate_text
from .model import TextHandle
from .prompting import cut_at_limit

FORMATS = ("peft", "merged", "jsonl")


def _adapter_folder(version: Version | None) -> Path:
    if version is None or not version.path:
        raise StudioError("The base model has no adapter to export; pick a tuned version such as v1.")
    folder = Path(version.path)
    if not (folder / "adapter_config.json").exists():
        raise StudioError(f"The adapter of {version.name} is missing at '{folder}'.")
    return folder


def _write_peft(version: Version | None, tmp: Path) -> None:
    shutil.copytree(_adapter_folder(version), tmp, dirs_exist_ok=True)


def _write_merged(handle: TextHandle, version: Version | None, tmp: Path) -> None:
    """A fresh copy of the base with the adapter merged in; the loaded handle is untouched."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = _adapter_folder(version)
    base = AutoModelForCausalLM.from_pretrained(handle.source, use_safetensors=True, trust_remote_code=False)
    merged = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
    merged.save_pretrained(str(tmp))
    handle.tokenizer.save_pretrained(str(tmp))


def _write_jsonl(handle: TextHandle, curated: Sequence[Candidate], tmp: Path) -> None:
    """One line per kept text; ``ended`` is False where generation cut the text off at its length limit (a
    trainer should not append an end token to it, as the studio's own tune does not)."""
    if not curated:
        raise StudioError("There is no kept text to export; keep some candidates first.")
    texts = [candidate_text(c) for c in curated]
    lines = [json.dumps({"prompt": c.prompt, "completion": text, "scores": c.scores, "seed": c.seed,
                         "id": c.id, "version": c.version, "decision": c.decision,
                         "ended": not cut_at_limit(handle.tokenizer, text, c.params)}, ensure_ascii=False)
             for c, text in zip(curated, texts)]
    (tmp / "curated.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def export(handle: TextHandle, version: Version | None, fmt: str, out_dir: Path,
           curated: Sequence[Candidate]) -> list[Path]:
    if fmt not in FORMATS:
        raise StudioError(f"Unknown text export format '{fmt}'; known: {', '.join(FORMATS)}.")
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        if fmt == "peft":
            _write_peft(version, tmp)
        elif fmt == "merged":
            _write_merged(handle, version, tmp)
        else:
            _write_jsonl(handle, curated, tmp)
    return sorted(p for p in out_dir.rglob("*") if p.is_file())
