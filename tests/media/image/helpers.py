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


def has_trained_lora(module) -> bool:
    """Whether ``module`` carries a LoRA a tune moved: its B matrices start at zero, so a non-zero one was learned."""
    ups = [p for n, p in module.named_parameters() if "lora_B" in n]
    return bool(ups) and max(float(p.abs().max()) for p in ups) > 0


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


def _clip_config(tokenizer, hidden: int = 32, projection: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=16, projection_dim=projection,
                          hidden_act="gelu", bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def _clip_tokenizer(folder: Path):
    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import save_tokenizer

    return save_tokenizer(vocabulary(), folder.parent / f"{folder.name}-tok")


def t5_tokenizer(max_length: int = 32):
    """A word-level T5-style tokenizer over the scene vocabulary, built locally."""
    from studio.media.image.scenes import vocabulary
    from studio.media.image.vocab import word_tokenizer

    return word_tokenizer(vocabulary(), max_length)


def _t5(tokenizer, d_model: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=37, num_layers=1,
                                   num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                   eos_token_id=1, decoder_start_token_id=0))


def _flow_vae(latent_channels: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(4, 8), layers_per_block=1,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035, sample_size=32)


def tiny_sdxl_pipeline(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL pipeline shaped as diffusers' own SDXL tests build it (two CLIPs, text-time embedding), 32 px."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=2, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=1)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
    tokenizer = _clip_tokenizer(folder)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(_clip_config(tokenizer)),
                                     text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer)),
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_sd3_pipeline(folder: Path, seed: int = 0) -> Path:
    """A tiny SD3 pipeline (MM-DiT, two CLIPs with projection, T5), shaped as diffusers' SD3 tests, 32 px."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=1, in_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=64, pooled_projection_dim=64, out_channels=4)
    tokenizer = _clip_tokenizer(folder)
    t5_tok = t5_tokenizer()
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    vae=_flow_vae(4), text_encoder=CLIPTextModelWithProjection(_clip_config(tokenizer)),
                                    tokenizer=tokenizer,
                                    text_encoder_2=CLIPTextModelWithProjection(_clip_config(tokenizer)),
                                    tokenizer_2=tokenizer, text_encoder_3=_t5(t5_tok, 64), tokenizer_3=t5_tok)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_flux_pipeline(folder: Path, seed: int = 0) -> Path:
    """A tiny dev-style Flux.1 pipeline (guidance embedding; CLIP + T5), shaped as diffusers' Flux tests, 32 px."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8], guidance_embeds=True)
    tokenizer = _clip_tokenizer(folder)
    t5_tok = t5_tokenizer()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(transformer=transformer, scheduler=scheduler, vae=_flow_vae(1),
                        text_encoder=CLIPTextModel(_clip_config(tokenizer)), tokenizer=tokenizer,
                        text_encoder_2=_t5(t5_tok, 32), tokenizer_2=t5_tok)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_pixart_pipeline(folder: Path, seed: int = 0) -> Path:
    """A tiny PixArt-alpha pipeline (DiT + T5): a text-to-image model the studio generates with but cannot tune."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    torch.manual_seed(seed)
    transformer = PixArtTransformer2DModel(sample_size=32, num_layers=1, patch_size=2, attention_head_dim=8,
                                           num_attention_heads=2, caption_channels=32, in_channels=4,
                                           cross_attention_dim=16, out_channels=8, attention_bias=True,
                                           activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                           norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6)
    # PixArt bins sizes by aspect ratio from 256 px up: a 4-level VAE keeps 256 px at 32x32 latents
    vae = AutoencoderKL(block_out_channels=(4, 4, 8, 8), in_channels=3, out_channels=3, latent_channels=4,
                        norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    tokenizer = t5_tokenizer()
    pipe = PixArtAlphaPipeline(tokenizer=tokenizer, text_encoder=_t5(tokenizer, 32), vae=vae,
                               transformer=transformer, scheduler=DDIMScheduler())
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
