"""Shared helpers for the image tests: candidates from generated files, tiny pipelines from configs."""
from __future__ import annotations

from pathlib import Path

from studio.medium import Candidate


def to_candidates(gens, prompt: str, folder: Path, version: str = "base", params=None) -> list[Candidate]:
    """Write each generated PNG into ``folder`` and wrap it as a Candidate (what the engine does)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for g in gens:
        path = folder / f"{version}-{g.seed}.png"
        path.write_bytes(g.files["png"])
        out.append(Candidate(id=f"{version}-{g.seed}", medium="image", prompt=prompt, seed=g.seed,
                             params=params or {}, version=version, model="test", path=str(path),
                             files={"png": str(path)}))
    return out


def tiny_sd_pipeline(folder: Path, seed: int = 0) -> Path:
    """A tiny Stable Diffusion pipeline from configs (as diffusers' own tests build one), saved as safetensors."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import save_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, norm_num_groups=8, cross_attention_dim=16, attention_head_dim=2,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2)
    tokenizer = save_tokenizer(vocabulary(), folder.parent / f"{folder.name}-tok")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
