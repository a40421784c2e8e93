"""Export formats: the LoRA for diffusers or for kohya-style tools, the curated set as an imagefolder.

- ``diffusers``: the version's adapter folder as it is (``pytorch_lora_weights.safetensors``),
  which stock ``pipeline.load_lora_weights(folder)`` loads;
- ``kohya``: one safetensors file with ``lora_unet_...`` / ``lora_te_...`` keys,
  ``lora_down`` / ``lora_up`` / ``alpha``, the layout AUTOMATIC1111 and ComfyUI read;
- ``imagefolder``: the curated pictures with a ``metadata.jsonl`` (``file_name``, ``text``)
  that ``datasets.load_dataset("imagefolder", data_dir=...)`` reads.
Every input is checked before anything is written.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from studio.errors import StudioError
from studio.fsutil import atomic_write_bytes, atomic_write_text
from studio.medium import Candidate, Version

FORMATS = ("diffusers", "kohya", "imagefolder")
WEIGHTS = "pytorch_lora_weights.safetensors"
KINDS = {".lora.down.weight": "lora_down", ".lora.up.weight": "lora_up",  # diffusers' layout
         ".lora_A.weight": "lora_down", ".lora_B.weight": "lora_up"}  # peft's layout


def _adapter_folder(version: Version | None) -> Path:
    if version is None or not version.path:
        raise StudioError("Only a tuned version (v1, v2, ...) has a LoRA to export; base has none.")
    folder = Path(version.path)
    if not (folder / WEIGHTS).is_file():
        raise StudioError(f"The adapter of {version.name} is missing ({folder / WEIGHTS}).")
    return folder


def kohya_state(folder: Path) -> tuple[dict, dict[str, str]]:
    """The diffusers LoRA in ``folder`` as a kohya state dict, with its metadata."""
    import torch
    from safetensors import safe_open

    alpha, rank = None, None
    info = folder / "studio_adapter.json"
    if info.is_file():
        spec = json.loads(info.read_text(encoding="utf-8"))
        alpha, rank = float(spec["alpha"]), int(spec["rank"])
    out = {}
    with safe_open(str(folder / WEIGHTS), framework="pt") as fh:
        for key in fh.keys():
            component, _, rest = key.partition(".")
            prefix = {"unet": "lora_unet_", "text_encoder": "lora_te_"}.get(component)
            ending = next((e for e in KINDS if rest.endswith(e)), None)
            if prefix is None or ending is None:
                raise StudioError(f"The adapter holds a weight kohya tools cannot read ({key}).")
            name = prefix + rest[: -len(ending)].replace(".", "_")
            tensor = fh.get_tensor(key).float().contiguous()
            out[f"{name}.{KINDS[ending]}.weight"] = tensor
            if KINDS[ending] == "lora_down":
                out[f"{name}.alpha"] = torch.tensor(alpha if alpha is not None else float(tensor.shape[0]))
                rank = rank or int(tensor.shape[0])
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
            "ss_network_alpha": str(alpha if alpha is not None else rank), "ss_base_model_version": "sd_v1"}
    return out, meta


def export(version: Version | None, fmt: str, out_dir: Path, curated: Sequence[Candidate]) -> list[Path]:
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise StudioError(f"Unknown image export format '{fmt}'; use one of: {', '.join(FORMATS)}.")
    if fmt == "imagefolder":
        if not curated:
            raise StudioError("The curated set is empty; there is nothing to export as an imagefolder.")
        missing = [c.id for c in curated if not Path(c.path).is_file()]
        if missing:
            raise StudioError(f"The image of curated candidate {missing[0]} is missing.")
        written, lines = [], []
        for c in curated:
            name = f"{c.id}.png"
            atomic_write_bytes(out_dir / name, Path(c.path).read_bytes())
            written.append(out_dir / name)
            lines.append(json.dumps({"file_name": name, "text": c.prompt, "seed": c.seed, "version": c.version}))
        atomic_write_text(out_dir / "metadata.jsonl", "\n".join(lines) + "\n")
        return written + [out_dir / "metadata.jsonl"]
    folder = _adapter_folder(version)
    if fmt == "diffusers":
        written = []
        for src in sorted(folder.iterdir()):
            if src.is_file():
                atomic_write_bytes(out_dir / src.name, src.read_bytes())
                written.append(out_dir / src.name)
        return written
    from safetensors.torch import save as save_bytes

    state, meta = kohya_state(folder)
    target = out_dir / f"studio-image-{version.name}.safetensors"
    atomic_write_bytes(target, save_bytes(state, metadata=meta))
    return [target]

