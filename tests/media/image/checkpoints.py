"""Single-file checkpoints for the tests: tiny SD 1.x and SDXL pipelines written in the original (LDM/SGM) layout.

The layout is the one AUTOMATIC1111, ComfyUI and Civitai files use: the UNet under
``model.diffusion_model.`` in the original block numbering, the VAE under ``first_stage_model.``,
SD 1.x's CLIP under ``cond_stage_model.transformer.`` and SDXL's two text encoders under
``conditioner.embedders.0.transformer.`` (CLIP-L, transformers' names) and
``conditioner.embedders.1.model.`` (OpenCLIP-bigG, fused q/k/v).  The tiny pipelines keep every
setting the file cannot tell (norm groups, schedulers, activations) at the family's, so the studio's
shipped configs, adapted to the file's shapes, rebuild exactly the same pipeline.
"""
from __future__ import annotations

import re
from pathlib import Path

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
       "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
       "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{RESNET.get(head, head)}.{tail}"


def unet_to_ldm(state: dict, layers: int, up_has_attention: list[bool]) -> dict:
    """A diffusers UNet state dict in the original UNet's names (``model.diffusion_model.``)."""
    out, stride = {}, layers + 1
    for key, value in state.items():
        name = None
        for old, new in TOP.items():
            if key.startswith(old + "."):
                name = new + key[len(old):]
        if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = 1 + i * stride + j
            name = f"input_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"input_blocks.{index}.1.{rest}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            name = f"input_blocks.{(int(m[1]) + 1) * stride}.0.op.{m[2]}"
        elif m := re.match(r"mid_block\.resnets\.(\d)\.(.+)", key):
            name = f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.+)", key):
            name = f"middle_block.1.{m[1]}"
        elif m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = i * stride + j
            name = f"output_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets" else f"output_blocks.{index}.1.{rest}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            i = int(m[1])
            name = f"output_blocks.{i * stride + layers}.{2 if up_has_attention[i] else 1}.conv.{m[2]}"
        if name is None:
            raise KeyError(f"no LDM name for {key}")
        out["model.diffusion_model." + name] = value
    return out


def vae_to_ldm(state: dict, levels: int) -> dict:
    out = {}
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for key, value in state.items():
        name = key.replace("conv_norm_out", "norm_out")
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            name = f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
            name = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            name = f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
            name = f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
            name = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
            name = f"{m[1]}.mid.attn_1.{attention[m[2]]}.{m[3]}"
            if m[3] == "weight" and value.ndim == 2:  # the original VAE's attention uses 1x1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + name] = value
    return out


def clip_to_ldm(state: dict, prefix: str) -> dict:
    """A transformers CLIP text model in the original files' names (``...transformer.text_model.``)."""
    return {prefix + ("" if k.startswith(("text_model.", "text_projection")) else "text_model.") + k: v
            for k, v in state.items() if not k.endswith("position_ids")}


def open_clip_to_ldm(state: dict, prefix: str) -> dict:
    """A transformers CLIP text model with projection in OpenCLIP's names (fused q/k/v, ``resblocks``)."""
    import torch

    state = {k.removeprefix("text_model."): v for k, v in state.items() if not k.endswith("position_ids")}
    out = {"token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
           "positional_embedding": state.pop("embeddings.position_embedding.weight"),
           "ln_final.weight": state.pop("final_layer_norm.weight"), "ln_final.bias": state.pop("final_layer_norm.bias"),
           "text_projection": state.pop("text_projection.weight").T.contiguous()}
    layers = {int(m[1]) for k in state for m in [re.match(r"encoder\.layers\.(\d+)\.", k)] if m}
    for i in sorted(layers):
        src, dst = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat([state.pop(src + f"self_attn.{p}_proj.{kind}")
                                                           for p in ("q", "k", "v")])
            for old, new in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[dst + f"{new}.{kind}"] = state.pop(src + f"{old}.{kind}")
    assert not state, sorted(state)[:3]
    return {prefix + k: v for k, v in out.items()}


def write_checkpoint(pipe, path: Path, dtype=None) -> Path:
    """``pipe`` (SD 1.x or SDXL) as one original-layout ``.safetensors`` file."""
    from safetensors.torch import save_file

    unet = pipe.unet
    up_attention = ["CrossAttn" in t for t in unet.config.up_block_types]
    state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block, up_attention)
    state.update(vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels)))
    if getattr(pipe, "text_encoder_2", None) is not None:
        state.update(clip_to_ldm(pipe.text_encoder.state_dict(), "conditioner.embedders.0.transformer."))
        state.update(open_clip_to_ldm(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model."))
    else:
        state.update(clip_to_ldm(pipe.text_encoder.state_dict(), "cond_stage_model.transformer."))
    state = {k: (v.to(dtype) if dtype is not None else v).contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def _clip(hidden: int, act: str, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=1, max_position_embeddings=77, projection_dim=hidden,
                            hidden_act=act, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _scheduler(family: str):
    import json

    import diffusers

    from studio.media.image.single_file import CONFIGS

    config = json.loads((CONFIGS / family / "scheduler" / "scheduler_config.json").read_text())
    return getattr(diffusers, config.pop("_class_name")).from_config(config)


def tiny_sd1(seed: int = 0):
    """A tiny SD 1.x pipeline with CLIP's real tokenizer, shaped so the shipped SD 1.x configs fit it."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    from studio.media.image.single_file import clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, norm_num_groups=32, cross_attention_dim=32, attention_head_dim=8,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                        layers_per_block=1, norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, scaling_factor=0.18215)
    return StableDiffusionPipeline(vae=vae, text_encoder=_clip(32, "quick_gelu", False),
                                   tokenizer=clip_tokenizer("<|endoftext|>"), unet=unet, scheduler=_scheduler("sd1"),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def tiny_sdxl(seed: int = 0):
    """A tiny SDXL pipeline (two CLIPs, text-time embedding) with CLIP's real tokenizer, shaped for the shipped configs.

    The two text encoders differ in width, as SDXL's do (diffusers tells them apart by it)."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel

    from studio.media.image.single_file import clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(1, 1),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=96, cross_attention_dim=80, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                        layers_per_block=1, norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, scaling_factor=0.13025, force_upcast=True)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=_clip(32, "quick_gelu", False),
                                     text_encoder_2=_clip(48, "gelu", True), tokenizer=clip_tokenizer("<|endoftext|>"),
                                     tokenizer_2=clip_tokenizer("!"), unet=unet, scheduler=_scheduler("sdxl"))


def sd15_shaped_checkpoint(path: Path, seed: int = 0) -> Path:
    """A checkpoint with Stable Diffusion 1.5's real shapes and names (random fp16 weights, about 2 GB).

    The modules are built on the meta device from the shipped SD 1.x configs (no memory, no init
    time); each tensor is then drawn small and random, one at a time, in fp16.
    """
    import json

    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.media.image.single_file import CONFIGS

    def config(part):
        return json.loads((CONFIGS / "sd1" / part / "config.json").read_text())

    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        text = CLIPTextModel(CLIPTextConfig(**config("text_encoder")))
    up_attention = ["CrossAttn" in t for t in unet.config.up_block_types]
    names = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block, up_attention)
    names.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    names.update(clip_to_ldm(text.state_dict(), "cond_stage_model.transformer."))
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, meta in names.items():
        if name.endswith(("norm.weight", "norm1.weight", "norm2.weight", "norm3.weight", "in_layers.0.weight",
                          "out_layers.0.weight", "out.0.weight", "norm_out.weight", "ln_final.weight")) \
                or "layer_norm" in name:
            state[name] = torch.ones(meta.shape, dtype=torch.float16)
        else:
            state[name] = (torch.randn(meta.shape, generator=generator) * 0.02).to(torch.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
