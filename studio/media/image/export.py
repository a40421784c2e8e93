"""Export formats: the LoRA for diffusers or for kohya-style tools, the curated set as an imagefolder.

- ``diffusers``: the version's adapter folder as it is (``pytorch_lora_weights.safetensors``),
  which stock ``pipeline.load_lora_weights(folder)`` loads;
- ``kohya``: one safetensors file with ``lora_unet_...`` / ``lora_te_...`` keys,
  ``lora_down`` / ``lora_up`` / ``alpha``, the layout AUTOMATIC1111, Forge and ComfyUI read
  (SD 1.x/2.x, SDXL in the original UNet's names, Flux in Black Forest Labs' names);
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
         ".lora_linear_layer.down.weight": "lora_down", ".lora_linear_layer.up.weight": "lora_up",  # its text encoders'
         ".lora_A.weight": "lora_down", ".lora_B.weight": "lora_up"}  # peft's layout


def _adapter_folder(version: Version | None) -> Path:
    if version is None or not version.path:
        raise StudioError("Only a tuned version (v1, v2, ...) has a LoRA to export; base has none.")
    folder = Path(version.path)
    if not (folder / WEIGHTS).is_file():
        raise StudioError(f"The adapter of {version.name} is missing ({folder / WEIGHTS}).")
    return folder


RESNET_CONV = {"conv1": "in_layers.2", "conv2": "out_layers.3"}  # the original ResBlock's Sequential indices


def _sgm_name(path: str, layers_per_block: int) -> str:
    """A diffusers UNet module path in the original (SGM) UNet's names, as kohya's SDXL LoRAs use.

    The SGM UNet numbers its blocks flat: ``input_blocks`` 1.. hold each down block's layers
    (a resnet at ``.0``, its attention at ``.1``) then a downsampler; ``output_blocks`` hold
    each up block's ``layers_per_block + 1`` layers; the mid block is resnet, attention, resnet
    (``middle_block.0/1/2``).  A resnet's two convolutions are ``in_layers.2`` and ``out_layers.3``.
    """
    import re

    stride = layers_per_block + 1
    m = re.match(r"(down_blocks|up_blocks|mid_block)\.(?:(\d+)\.)?resnets\.(\d+)\.(conv1|conv2)", path)
    if m:  # a resnet's convolutions (a LoCon): in_layers.2 and out_layers.3 of the resnet at ".0"
        conv = RESNET_CONV[m[4]]
        if m[1] == "mid_block":  # the mid block: resnet, attention, resnet
            return f"middle_block.{2 * int(m[3])}.{conv}"
        if m[1] == "down_blocks":
            return f"input_blocks.{1 + int(m[2]) * stride + int(m[3])}.0.{conv}"
        return f"output_blocks.{int(m[2]) * stride + int(m[3])}.0.{conv}"
    m = re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", path)
    if m:
        return f"input_blocks.{1 + int(m[1]) * stride + int(m[2])}.1.{m[3]}"
    m = re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", path)
    if m:
        return f"output_blocks.{int(m[1]) * stride + int(m[2])}.1.{m[3]}"
    m = re.match(r"mid_block\.attentions\.0\.(.+)", path)
    if m:
        return f"middle_block.1.{m[1]}"
    raise StudioError(f"The adapter holds a UNet weight kohya tools cannot place ({path}).")


# Flux in Black Forest Labs' own module names (what kohya sd-scripts writes and ComfyUI, Forge and
# diffusers read): the q, k, v projections are one fused linear there
FLUX_FUSED = (
    (r"transformer_blocks\.(\d+)\.attn\.(to_q|to_k|to_v)", "double_blocks_{}_img_attn_qkv", ("to_q", "to_k", "to_v")),
    (r"transformer_blocks\.(\d+)\.attn\.(add_q_proj|add_k_proj|add_v_proj)", "double_blocks_{}_txt_attn_qkv",
     ("add_q_proj", "add_k_proj", "add_v_proj")),
    # a single block's linear1 computes q, k, v and the MLP's input (4x wide) in one matrix
    (r"single_transformer_blocks\.(\d+)\.attn\.(to_q|to_k|to_v)", "single_blocks_{}_linear1",
     ("to_q", "to_k", "to_v", "mlp")),
)
FLUX_PLAIN = ((r"transformer_blocks\.(\d+)\.attn\.to_out\.0", "double_blocks_{}_img_attn_proj"),
              (r"transformer_blocks\.(\d+)\.attn\.to_add_out", "double_blocks_{}_txt_attn_proj"))


def _fuse(parts: dict[str, tuple], order: tuple[str, ...]):
    """One LoRA for a fused linear: the parts' down matrices stacked, their up matrices block-diagonal.

    (B1 A1; B2 A2; ...) = blockdiag(B1, B2, ...) @ (A1; A2; ...), so the fused LoRA adds exactly the
    parts' updates; a part without a LoRA (Flux's MLP input in linear1) gets zero rows.
    """
    import torch

    some_down, some_up = next(iter(parts.values()))
    rank = some_down.shape[0]
    downs = [parts[name][0] if name in parts else torch.zeros_like(some_down) for name in order if name != "mlp"]
    rows = [(parts[name][1] if name in parts else torch.zeros_like(some_up)) for name in order if name != "mlp"]
    if "mlp" in order:
        rows.append(torch.zeros(4 * some_up.shape[0], rank))  # Flux's single blocks: MLP width = 4x hidden
    down = torch.cat(downs, dim=0)
    up = torch.zeros(sum(r.shape[0] for r in rows), rank * len(downs))
    at = 0
    for i, r in enumerate(rows):
        if i < len(downs):
            up[at:at + r.shape[0], i * rank:(i + 1) * rank] = r
        at += r.shape[0]
    return down, up, len(downs)


def _flux_names(modules: dict[str, tuple]) -> dict[str, tuple]:
    """Flux transformer LoRA modules (diffusers paths) in BFL names, fusing q/k/v: name -> (down, up, alpha scale)."""
    import re

    out, groups = {}, {}
    for path, pair in modules.items():
        for pattern, name in FLUX_PLAIN:
            m = re.fullmatch(pattern, path)
            if m:
                out[name.format(m[1])] = (*pair, 1)
                break
        else:
            for pattern, name, order in FLUX_FUSED:
                m = re.fullmatch(pattern, path)
                if m:
                    groups.setdefault((name.format(m[1]), order), {})[m[2]] = pair
                    break
            else:
                raise StudioError(f"The adapter holds a Flux weight kohya tools cannot place ({path}).")
    for (name, order), parts in groups.items():
        out[name] = _fuse(parts, order)
    return out


def kohya_state(folder: Path) -> tuple[dict, dict[str, str]]:
    """The diffusers LoRA in ``folder`` as one kohya-style state dict, with its metadata.

    Stable Diffusion 1.x/2.x keeps the diffusers module names (``lora_unet_down_blocks_...``,
    which AUTOMATIC1111 and ComfyUI map); SDXL uses the original UNet's names
    (``lora_unet_input_blocks_...``, ``lora_te1_``/``lora_te2_``) as kohya sd-scripts writes them;
    Flux uses Black Forest Labs' names (``lora_unet_double_blocks_...``) with q/k/v fused.
    """
    import torch
    from safetensors import safe_open

    from .families import by_name

    spec = {}
    info = folder / "studio_adapter.json"
    if info.is_file():
        spec = json.loads(info.read_text(encoding="utf-8"))
    family = by_name(spec.get("family", "Stable Diffusion 1.x/2.x"))
    if family.kohya is None:
        raise StudioError(f"{family.name} LoRAs have no kohya layout; export 'diffusers' (ComfyUI loads it as is).")
    alpha = float(spec["alpha"]) if "alpha" in spec else None
    rank = int(spec["rank"]) if "rank" in spec else None
    modules: dict[str, dict[str, dict[str, tuple]]] = {}  # component -> module path -> kind -> tensor
    with safe_open(str(folder / WEIGHTS), framework="pt") as fh:
        for key in fh.keys():
            component, _, rest = key.partition(".")
            ending = next((e for e in KINDS if rest.endswith(e)), None)
            if ending is None:
                raise StudioError(f"The adapter holds a weight kohya tools cannot read ({key}).")
            path = rest[: -len(ending)]
            modules.setdefault(component, {}).setdefault(path, {})[KINDS[ending]] = fh.get_tensor(key).float()
    pairs = {c: {p: (k["lora_down"], k["lora_up"]) for p, k in paths.items()} for c, paths in modules.items()}
    rank = rank or next(iter(next(iter(pairs.values())).values()))[0].shape[0]
    alpha = alpha if alpha is not None else float(rank)
    conv_alpha = float(spec["conv_alpha"]) if spec.get("conv_alpha") is not None else alpha
    convs: set[str] = set()  # kohya names of the convolutions' LoRAs, which carry conv_alpha
    te_prefix = {"text_encoder": "lora_te_"} if family.kohya == "sd" else \
        {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}
    named: dict[str, tuple] = {}  # kohya module name -> (down, up, how many LoRAs it fuses)
    for component, paths in pairs.items():
        before = set(named)
        if component in te_prefix:  # sd-scripts names a CLIP's layers from its text_model (transformers 5 has none)
            named.update({te_prefix[component] + ("" if p.startswith("text_model.") else "text_model_")
                          + p.replace(".", "_"): (*pair, 1) for p, pair in paths.items()})
        elif component == "unet" and family.kohya == "sd":
            named.update({"lora_unet_" + p.replace(".", "_"): (*pair, 1) for p, pair in paths.items()})
        elif component == "unet" and family.kohya == "sgm":
            per_block = int(spec.get("layers_per_block") or 2)
            named.update({"lora_unet_" + _sgm_name(p, per_block).replace(".", "_"): (*pair, 1)
                          for p, pair in paths.items()})
        elif component == "transformer" and family.kohya == "bfl":
            named.update({"lora_unet_" + n: v for n, v in _flux_names(paths).items()})
        else:
            raise StudioError(f"The adapter holds '{component}' weights kohya tools cannot read.")
        if component == family.denoiser:
            convs |= {n for n in set(named) - before if named[n][0].dim() == 4 and named[n][0].shape[-1] > 1}
    out = {}
    for name, (down, up, fused) in sorted(named.items()):
        out[f"{name}.lora_down.weight"] = down.contiguous()
        out[f"{name}.lora_up.weight"] = up.contiguous()
        # a fused LoRA's rank is fused x rank: keep alpha/rank
        out[f"{name}.alpha"] = torch.tensor((conv_alpha if name in convs else alpha) * fused)
    meta = {"ss_network_module": "networks.lora_flux" if family.kohya == "bfl" else "networks.lora",
            "ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
            "ss_base_model_version": family.base_model_version}
    if convs:  # a LoCon: 3x3 convolutions too
        meta["ss_network_args"] = json.dumps({"conv_dim": str(rank), "conv_alpha": str(conv_alpha)})
    return out, meta


def export(version: Version | None, fmt: str, out_dir: Path, curated: Sequence[Candidate]) -> list[Path]:
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise StudioError(f"Unknown image export format '{fmt}'; use one of: {', '.join(FORMATS)}.")
    if fmt == "imagefolder":
        if not curated:
            raise StudioError("The kept set is empty; there is nothing to export as an imagefolder.")
        missing = [c.id for c in curated if not Path(c.path).is_file()]
        if missing:
            raise StudioError(f"The image of kept candidate {missing[0]} is missing.")
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

