"""Single-file checkpoints (AUTOMATIC1111, Forge, ComfyUI, Civitai ``.safetensors``), loaded offline.

The family comes from the file's tensor names (read from its header, nothing loaded):

- SD 1.x: ``cond_stage_model.transformer.`` (OpenAI's CLIP-L in transformers' names);
- SD 2.x: ``cond_stage_model.model.`` (OpenCLIP-H); v-prediction, as the 768 px models are;
- SDXL: ``conditioner.embedders.0/1.`` (CLIP-L and OpenCLIP-bigG) and the UNet's ``label_emb``;
- SD3 / SD3.5: ``joint_blocks.`` (MM-DiT); Flux.1: ``double_blocks.`` (``guidance_in`` on dev).

SD 1.x, 2.x and SDXL files hold every weight: diffusers' ``from_single_file`` converts them with
the component configs the studio ships (``configs/FAMILY``, JSON only), adapted to the file's
shapes (a fine-tune keeps the family's shapes; a tiny test model has its own), and CLIP's BPE
tokenizer built from the merges file open_clip_torch ships.  SD3 and Flux files usually hold the
denoiser only (their T5 alone is 9.5 GB): the rest comes from the family's diffusers repo in the
Hugging Face cache, and one sentence names that repo when it is missing.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from studio.errors import StudioError

CONFIGS = Path(__file__).resolve().parent / "configs"
UNET = "model.diffusion_model."
CLIP_VOCAB = 49408
CLIP_MERGES = CLIP_VOCAB - 256 * 2 - 2  # byte tokens, their end-of-word forms, start and end
# where SD3's and Flux's other components come from (the first one in the cache is used)
BASE_REPOS = {
    "sd3": ("stabilityai/stable-diffusion-3.5-medium", "stabilityai/stable-diffusion-3-medium-diffusers"),
    "sd35-large": ("stabilityai/stable-diffusion-3.5-large",),
    "flux-dev": ("black-forest-labs/FLUX.1-dev",),
    "flux-schnell": ("black-forest-labs/FLUX.1-schnell",),
}
NAMES = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "SDXL", "sd3": "SD3/SD3.5",
         "sd35-large": "SD3.5 Large", "flux-dev": "Flux.1 dev", "flux-schnell": "Flux.1 schnell"}


def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a ``.safetensors`` file, from its header alone."""
    from safetensors import safe_open

    shapes = {}
    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            shapes[key] = tuple(fh.get_slice(key).get_shape())
    return shapes


def detect(shapes: dict[str, tuple[int, ...]], name: str = "the checkpoint") -> str:
    """The family of a checkpoint from its tensor names; one sentence for what is not a whole model."""
    keys = shapes.keys()
    if any(k.startswith(("lora_unet_", "lora_te", "lora_transformer_")) or ".lora_down." in k or ".lora_A." in k
           for k in keys):
        raise StudioError(f"{name} is a LoRA, not a model; use it with --lora FILE[:STRENGTH] on a base model.")
    if any("joint_blocks.0.context_block" in k for k in keys):
        return "sd35-large" if any("joint_blocks.37." in k for k in keys) else "sd3"
    if any(re.match(r"(model\.diffusion_model\.)?double_blocks\.0\.img_attn", k) for k in keys):
        return "flux-dev" if any("guidance_in." in k for k in keys) else "flux-schnell"
    if UNET + "input_blocks.0.0.weight" not in shapes:
        raise StudioError(f"{name} is not a Stable Diffusion, SDXL, SD3 or Flux checkpoint (no denoiser found).")
    if shapes[UNET + "input_blocks.0.0.weight"][1] != 4:
        raise StudioError(f"{name} is an inpainting or other special UNet ({shapes[UNET + 'input_blocks.0.0.weight'][1]} "
                          "input channels); studio generates with text-to-image checkpoints only.")
    if any(k.startswith("conditioner.embedders.1.model.") for k in keys):
        return "sdxl"
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        raise StudioError(f"{name} is an SDXL refiner, which refines pictures rather than makes them; use an SDXL base.")
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"
    if any(k.startswith("cond_stage_model.transformer.") for k in keys):
        return "sd1"
    raise StudioError(f"{name} holds a UNet but no text encoder; studio needs a whole checkpoint "
                      "(UNet, text encoder and VAE).")


# -- component configs, adapted to the file's shapes ----------------------------------------------

def _count(shapes, pattern: str) -> int:
    found = {m.group(1) for k in shapes for m in [re.match(pattern, k)] if m}
    return len(found)


def _heads(template: Any, channels: list[int], template_channels: list[int]) -> Any:
    """Attention heads: the family's own when the shapes are the family's, else 64-wide heads (at least one)."""
    if channels == template_channels:
        return template
    if isinstance(template, int) and all(c % template == 0 for c in channels):
        return template
    return [max(1, c // 64) for c in channels]


def unet_config(template: dict, shapes: dict) -> dict:
    """The UNet config for the LDM UNet in ``shapes`` (levels, widths, layers, attention, text width)."""
    config = dict(template)
    base = shapes[UNET + "time_embed.0.weight"][1]
    downsamplers = sorted(int(m.group(1)) for k in shapes
                          for m in [re.match(re.escape(UNET) + r"input_blocks\.(\d+)\.0\.op\.weight", k)] if m)
    per_level = downsamplers[0] - 1 if downsamplers else _count(shapes, re.escape(UNET) + r"input_blocks\.(\d+)\.") - 1
    levels = len(downsamplers) + 1
    channels, down, layers = [], [], []
    for level in range(levels):
        first = 1 + level * (per_level + 1)
        conv = shapes.get(f"{UNET}input_blocks.{first}.0.out_layers.3.weight")
        channels.append(conv[0] if conv else base)
        attention = re.escape(f"{UNET}input_blocks.{first}.1.transformer_blocks.") + r"(\d+)\."
        count = _count(shapes, attention)
        down.append("CrossAttnDownBlock2D" if count else "DownBlock2D")
        layers.append(max(1, count))
    config.update(block_out_channels=channels, layers_per_block=per_level, down_block_types=down,
                  up_block_types=[t.replace("Down", "Up") for t in reversed(down)],
                  attention_head_dim=_heads(template["attention_head_dim"], channels, template["block_out_channels"]))
    key = next(k for k in shapes if k.endswith("attn2.to_k.weight") and k.startswith(UNET))
    config["cross_attention_dim"] = shapes[key][1]
    proj = next(k for k in shapes if k.startswith(UNET) and k.endswith("proj_in.weight"))
    config["use_linear_projection"] = len(shapes[proj]) == 2
    if "transformer_layers_per_block" in template:
        config["transformer_layers_per_block"] = layers
    return config


def vae_config(template: dict, shapes: dict, prefix: str = "first_stage_model.") -> dict:
    config = dict(template)
    levels = _count(shapes, re.escape(prefix + "encoder.down.") + r"(\d+)\.")
    channels = [shapes[f"{prefix}encoder.down.{i}.block.0.conv1.weight"][0] for i in range(levels)]
    per_level = _count(shapes, re.escape(prefix + "encoder.down.0.block.") + r"(\d+)\.")
    groups = math.gcd(template["norm_num_groups"], *channels)
    config.update(block_out_channels=channels, layers_per_block=per_level, norm_num_groups=groups,
                  latent_channels=shapes[prefix + "quant_conv.weight"][0] // 2,
                  down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels)
    return config


def clip_config(template: dict, shapes: dict, prefix: str, open_clip: bool) -> dict:
    """A CLIP text encoder's config from its weights in transformers' names or OpenCLIP's."""
    config = dict(template)
    if open_clip:
        vocab, hidden = shapes[prefix + "token_embedding.weight"]
        positions = shapes[prefix + "positional_embedding"][0]
        layers = _count(shapes, re.escape(prefix + "transformer.resblocks.") + r"(\d+)\.")
        inner = shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"][0]
        if prefix + "text_projection" in shapes:
            config["projection_dim"] = shapes[prefix + "text_projection"][1]
    else:
        root = prefix + "text_model." if any(k.startswith(prefix + "text_model.") for k in shapes) else prefix
        vocab, hidden = shapes[root + "embeddings.token_embedding.weight"]
        positions = shapes[root + "embeddings.position_embedding.weight"][0]
        layers = _count(shapes, re.escape(root + "encoder.layers.") + r"(\d+)\.")
        inner = shapes[root + "encoder.layers.0.mlp.fc1.weight"][0]
        if prefix + "text_projection.weight" in shapes:
            config["projection_dim"] = shapes[prefix + "text_projection.weight"][0]
    if hidden != template["hidden_size"]:
        config["num_attention_heads"] = max(1, hidden // 64)
    if open_clip and template.get("num_hidden_layers") == layers - 1:  # SD2 reads the penultimate layer
        layers -= 1
    config.update(vocab_size=vocab, hidden_size=hidden, max_position_embeddings=positions,
                  num_hidden_layers=layers, intermediate_size=inner)
    return config


def _read(folder: Path, part: str, name: str = "config.json") -> dict:
    return json.loads((folder / part / name).read_text(encoding="utf-8"))


def config_folder(family: str, shapes: dict) -> Path:
    """The family's shipped configs adapted to this file's shapes, written once into the model cache."""
    from studio.paths import model_cache

    source = CONFIGS / family
    parts = {"unet": unet_config(_read(source, "unet"), shapes), "vae": vae_config(_read(source, "vae"), shapes)}
    if family == "sdxl":
        parts["text_encoder"] = clip_config(_read(source, "text_encoder"), shapes,
                                            "conditioner.embedders.0.transformer.", open_clip=False)
        parts["text_encoder_2"] = clip_config(_read(source, "text_encoder_2"), shapes,
                                              "conditioner.embedders.1.model.", open_clip=True)
        pooled = parts["text_encoder_2"]["projection_dim"]
        embed_in = shapes[UNET + "label_emb.0.0.weight"][1]
        parts["unet"].update(projection_class_embeddings_input_dim=embed_in,
                             addition_time_embed_dim=(embed_in - pooled) // 6)
    elif family == "sd2":
        parts["text_encoder"] = clip_config(_read(source, "text_encoder"), shapes, "cond_stage_model.model.",
                                            open_clip=True)
    else:
        parts["text_encoder"] = clip_config(_read(source, "text_encoder"), shapes, "cond_stage_model.transformer.",
                                            open_clip=False)
    files = {"model_index.json": (source / "model_index.json").read_text(encoding="utf-8"),
             "scheduler/scheduler_config.json": (source / "scheduler" / "scheduler_config.json").read_text("utf-8")}
    files.update({f"{part}/config.json": json.dumps(config, indent=1, sort_keys=True)
                  for part, config in parts.items()})
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    folder = model_cache(f"single-file-configs/{family}-{digest}")
    if not (folder / "model_index.json").is_file():
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    return folder


# -- CLIP's tokenizer from the BPE merges open_clip_torch ships -----------------------------------

def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's and CLIP's reversible map of the 256 byte values to printable characters, in CLIP's order:
    the printable bytes as themselves first, then the others as the characters from U+0100 on."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in chars]
    chars.update({b: chr(256 + i) for i, b in enumerate(others)})
    return chars


def _merges_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise StudioError("A single-file checkpoint needs CLIP's tokenizer, which studio takes from the "
                          "open_clip_torch package; install it (pip install --no-deps open_clip_torch).")
    path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise StudioError(f"The open_clip_torch package has no CLIP merges file ({path.name}); reinstall it.")
    return path


def clip_tokenizer_folder() -> Path:
    """A CLIPTokenizer folder (vocab.json, merges.txt) built once from open_clip_torch's BPE merges.

    CLIP's vocabulary is the 256 byte characters, the same with the end-of-word mark ``</w>``,
    one token per merge in order, then ``<|startoftext|>`` and ``<|endoftext|>``: 49408 in all.
    """
    from studio.paths import model_cache

    folder = model_cache("clip-tokenizer")
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    lines = gzip.open(_merges_file(), "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:CLIP_MERGES + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(pair) for pair in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(p) for p in merges) + "\n",
                                       encoding="utf-8")
    return folder


def clip_tokenizer(pad: str):
    """CLIP's tokenizer, padding with ``pad`` (SD 1.x pads with the end token, OpenCLIP models with '!')."""
    from transformers import CLIPTokenizer

    folder = clip_tokenizer_folder()
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token=pad,
                         model_max_length=77)


# -- loading -----------------------------------------------------------------------------------------

def _cached_base(family: str) -> Path:
    from studio.loading import hub_snapshot

    for repo in BASE_REPOS[family]:
        try:
            return hub_snapshot(repo, "image model")
        except StudioError:
            continue
    repo = BASE_REPOS[family][0]
    raise StudioError(f"A {NAMES[family]} checkpoint holds the denoiser only; its text encoders, tokenizers and "
                      f"VAE come from {repo}, which is not in the Hugging Face cache: run "
                      f"`studio models pull {repo}` first.")


def load_single_file(path: Path, dtype):
    """A diffusers pipeline from one ``.safetensors`` checkpoint, offline."""
    shapes = read_header(path)
    family = detect(shapes, f"'{path.name}'")
    if family.startswith(("sd3", "sd35", "flux")):
        return _load_denoiser_only(path, family, dtype)
    import diffusers

    folder = config_folder(family, shapes)
    cls = getattr(diffusers, json.loads((folder / "model_index.json").read_text())["_class_name"])
    tokenizers = {"tokenizer": clip_tokenizer("<|endoftext|>" if family in ("sd1", "sdxl") else "!")}
    if family == "sdxl":
        tokenizers["tokenizer_2"] = clip_tokenizer("!")
    extra = {"safety_checker": None, "requires_safety_checker": False} if family != "sdxl" else {}
    return cls.from_single_file(str(path), config=str(folder), local_files_only=True, dtype=dtype,
                                **tokenizers, **extra)


def _load_denoiser_only(path: Path, family: str, dtype):
    from diffusers import FluxPipeline, FluxTransformer2DModel, SD3Transformer2DModel, StableDiffusion3Pipeline

    base = _cached_base(family)
    model_cls, pipe_cls = ((FluxTransformer2DModel, FluxPipeline) if family.startswith("flux")
                           else (SD3Transformer2DModel, StableDiffusion3Pipeline))
    transformer = model_cls.from_single_file(str(path), config=str(base), subfolder="transformer",
                                             local_files_only=True, dtype=dtype)
    return pipe_cls.from_pretrained(str(base), transformer=transformer, dtype=dtype, use_safetensors=True,
                                    local_files_only=True)
