"""The image medium's settings: generating and tuning (defaults, ranges and help, once)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from ...errors import StudioError
from ...preference import PreferenceTune, beta_setting, drop_share_setting, objective_setting, sft_weight_setting
from ...settings import Settings, lr_setting, rank_setting, setting, stop_narrowing_setting, tuned_lr_scale_setting
from .samplers import CHOICES as SAMPLERS
from .samplers import SHOWN as SAMPLER_NAMES

LORA_STRENGTH = (-2.0, 2.0)  # a community LoRA's weight range (negative pushes away from what it learned)
OFFLOAD = ("none", "model", "sequential")
QUANTIZE = ("none", "int8", "nf4")


def parse_lora(text: str) -> tuple[str, float]:
    """``FILE`` or ``FILE:STRENGTH`` (a path may hold colons: only a number after the last one is a strength)."""
    path, sep, tail = text.rpartition(":")
    if sep and path:
        try:
            return path, float(tail)
        except ValueError:
            pass
    return text, 1.0


def check_lora(text: str) -> str:
    """``ABSOLUTE_PATH:STRENGTH`` for a LoRA given as ``FILE[:STRENGTH]``; one sentence when it is unusable."""
    path, strength = parse_lora(text)
    lo, hi = LORA_STRENGTH
    if not lo <= strength <= hi:
        raise StudioError(f"A LoRA's strength is a number from {lo:g} to {hi:g}, not {strength:g}.")
    where = Path(path).expanduser()
    if not where.exists():
        raise StudioError(f"The LoRA '{path}' does not exist.")
    if where.is_file() and where.suffix != ".safetensors":
        raise StudioError(f"The LoRA '{where.name}' is not a .safetensors file; studio loads safetensors only.")
    return f"{where.resolve()}:{strength:g}"


@dataclasses.dataclass
class ImageGenerate(Settings):
    owner: ClassVar[str] = "image"

    negative_prompt: str = setting("", "what the picture should not show", label="Avoid (negative prompt)")
    steps: int = setting(12, "denoising steps: more is slower and more detailed", min=1, max=500, label="Steps")
    guidance: float = setting(4.0, "how closely to follow the prompt (guidance scale; 1 = off)", min=0, max=50,
                              label="Prompt strength")
    width: int = setting(0, "picture width in pixels, a multiple of 8; 0 = the model's own size", min=0, max=8192,
                         label="Width (0 = the model's)")
    height: int = setting(0, "picture height in pixels, a multiple of 8; 0 = the model's own size", min=0,
                          max=8192, label="Height (0 = the model's)")
    sampler: str = setting("model", "how the steps are taken: the model's own scheduler, or a common sampler (by "
                                    "ComfyUI's name; the page shows AUTOMATIC1111's); the ancestral and sde ones add "
                                    "fresh noise at every step",
                           choices=SAMPLERS, shown=SAMPLER_NAMES, label="Sampler")
    batch_size: int = setting(8, "pictures drawn at once (more needs more memory)", min=1, max=512,
                              label="Pictures drawn at once")
    # 0.15: the base draws the first 2 steps of 12, the tuned version the rest.  At today's tune (learned at the
    # noisier three quarters, stored 1.5x further) the rule's protocol met 82 of 96 against 0.08's 80, the artist's
    # 40 against 40, likeness 21 against 21, the sum 1.719 against 1.708: variety up on every run, lift a little down
    # (docs/objectives.md, "Pictures: the base lays out two steps again"); 0.08 had won when the tune moved less
    adapter_from: float = setting(0.15, "share of the denoising steps the base draws before a tuned version "
                                        "takes over (0 = from the start)", min=0, below=1,
                                  label="Base lays out the first")

    loras: list[str] = setting([], "community LoRA files (kohya or diffusers), each FILE or FILE:STRENGTH "
                                   "(strength -2 to 2, default 1)", label="LoRAs (file:strength)")
    offload: str = setting("none", "GPU memory: model keeps each part on the GPU only while it runs, sequential "
                                   "each layer (slowest, least memory); no effect without a GPU",
                           choices=OFFLOAD, label="Offload to the CPU")
    vae_tiling: bool = setting(False, "decode pictures in tiles, one at a time (large sizes on small cards)",
                               label="Decode in tiles")

    def check(self, owner: str) -> None:
        self.loras = [check_lora(text) for text in self.loras]
        for key in ("width", "height"):
            if getattr(self, key) % 8:
                raise StudioError(f"The image {key} must be a multiple of 8 pixels (or 0 for the model's "
                                  f"native size), not {getattr(self, key)}.")


@dataclasses.dataclass
class ImageTune(PreferenceTune):
    """25 passes (25 steps for 8 kept): 100 fixed steps collapsed a round to one picture (variety 0.47x
    the kept set's).  Rank 2 at lr 4e-3 carries the kept colour and light without the room to learn the
    kept pictures themselves: copies 0.01-0.02 where rank 8 had 0.17 (docs/results.md, 3 seeds x 2
    scorers).  Real-model presets set their own."""

    owner: ClassVar[str] = "image tune"

    # Diffusion-KTO (tune.py) learning away from the bottom quarter of each batch, at beta 1000 so it stops before it
    # overshoots: 73 of 96 built-in targets against sft's 65 with the rule's drops, 37 of 48 against 31 with an
    # artist's; the three red stars stay stars (docs/objectives.md, "Pictures: the bottom of the batch").  Learning
    # away from every drop of the rule (the middling ones too) lost the keeps; beta 100 overshot (one red mass on cyan)
    # Diffusion-DPO (dpo) lifts more, narrows more: 70 of 96 against 76 (docs/objectives.md, "Pictures: Diffusion-DPO")
    objective: str = objective_setting("kto", ("sft", "kto", "dpo"))
    # the reward is a difference of per-element denoising errors, which a default tune moves by ~0.04 (a language
    # model's log-prob moves by nats): 1000 puts the sigmoid's knee at a tenth of where 100 did, so it stops sooner
    beta: float = beta_setting(1000.0, maximum=1e6, objectives=("kto", "dpo"))
    drop_share: float = drop_share_setting(0.25)
    # sft's loss on the kept pictures beside kto's: 76 of 96 built-in targets against kto alone's 73, no run below the
    # base where kto alone had two (docs/objectives.md, "Pictures: kto with the kept pictures' own loss")
    sft_weight: float = sft_weight_setting(1.0, "pictures")

    epochs: float = setting(25.0, "passes over the kept set when steps is empty", above=0, max=10_000,
                            label="Passes over the kept set")
    rank: int = rank_setting(2)
    lr: float = lr_setting(4e-3)
    # a later round at 0.3x the rate: round 2 met 51 of 60 built-in checks against 50, variety kept in 8 of 12 runs
    # against 3, lift 10 against 12 (docs/objectives.md, "Pictures: a gentler later round"); the built-in sketchbook only
    tuned_lr_scale: float = tuned_lr_scale_setting(0.3)
    # twice what the tune learned, with the base drawing the first 2 steps (adapter_from 0.15): the rule's protocol
    # 81 of 96 against 1.5's 82, the artist's 43 of 48 against 40, likeness 21 against 21, the sum 1.745 against 1.719;
    # 1.5 had won against 1 with the base drawing 1 step (docs/objectives.md, "Pictures: the version stored further
    # than it learned", "... the base lays out two steps again"); measured on the built-in only
    extrapolate: float = setting(2.0, "store the version this many times as far from where the tune started as the "
                                      "tune took it (ExPO, Zheng et al. 2024): its pictures go further the way the "
                                      "keeps lead, and vary less; 1 = as learned. Exports carry it; the strength "
                                      "slider scales the version again at generation",
                                 above=0, max=4, label="Go further than learned")
    # the convolutions' LoRA at half the attention's scale: 76 of 96 built-in targets as attention alone, 40 of 48 with the
    # simulated artist (44), 19 of 24 likeness runs (15): the highest sum by the standing rule, 1.604 against 1.479
    # (docs/objectives.md "Pictures: the convolutions at half strength").  At the attention's full scale it lifted more
    # and narrowed the pictures (variety 8 of 24); at a quarter it lost the lift (72).
    conv_alpha_share: ClassVar[float] = 0.5
    conv: bool | None = setting(None, "also adapt the denoiser's convolutions, not only its attention (LoCon, kohya's "
                                      "conv_dim): learns more of the kept pictures' layout and colour; empty: on "
                                      "wherever the denoiser has convolutions (SD 1.x/2.x, SDXL, the built-in), off "
                                      "where it has none (SD3, Flux)", label="Adapt convolutions too")
    layers: str = setting("all", "which of the denoiser's layers the LoRA adapts: all its attention (and the "
                                 "convolutions, see conv), or only the keys and values its cross-attention makes "
                                 "from the prompt (cross: Custom Diffusion's choice; learns what the words draw, "
                                 "less of where the seed puts things)", choices=("all", "cross"),
                          shown=("all attention", "the prompt's keys and values"), label="Layers adapted")
    conv_alpha: float | None = setting(None, "the convolutions' LoRA alpha (kohya's conv_alpha; their scale is "
                                             "conv_alpha / rank); empty: half the attention's alpha",
                                       above=0, max=10_000, label="Convolutions' alpha")
    # rows from the noisier three quarters of the schedule: the rule's protocol 80 of 96 against 77, the artist's 40
    # against 40, likeness 21 against 21, the sum 1.708 against 1.693; at half of it tone lifted more and likeness fell
    # (18), and negative space lifted in 3 of 3 suite seeds (docs/objectives.md, "Pictures: learning at the noisier
    # part of the schedule"); measured on the built-in only
    min_timestep: float = setting(0.25, "learn at the noisier part of the schedule only: the lowest training "
                                        "timestep as a share of it (kohya's min_timestep / 1000); higher learns more "
                                        "of the layout and colour the first steps settle and less of the detail "
                                        "(0: every timestep)", min=0, max=0.95, label="Lowest timestep learned")
    mirror: bool = setting(False, "also learn from each kept picture mirrored left to right (twice the pictures; "
                                  "leave off for lettering, logos or anything one-sided)",
                           label="Learn from mirror images too")
    # each picture at its own starting noise: variety kept on colourfulness and brightness, half their lift lost;
    # contrast and sharpness narrowed anyway: 60 of 96 against 76 (docs/objectives.md, "... its own starting noise")
    own_noise: float = setting(0.0, "the share of training rows noised with the starting noise their picture's seed "
                                    "drew (the noise it was made from), not fresh noise: the tune learns where those "
                                    "pictures' own paths went, not every noise toward them (0: fresh noise always)",
                               min=0, max=1, label="Own starting noise")
    empty_prompt: float = setting(0.0, "the share of training rows learned with an empty prompt (kohya's caption "
                                       "dropout): the tune then moves the unguided prediction too, so the prompt "
                                       "strength does not multiply what it learned (0: every row with its prompt)",
                                  min=0, max=1, label="Rows with an empty prompt")
    # the tune's own pictures held as spread as the kept set's: variety kept in 23 of 24 built-in runs (the default 12),
    # contrast met in 24 of 24 (15), 74 of 96 against 76 on seeds 0-5 and 61 against 67 on seeds 6-11: brightness and
    # sharpness lift less (docs/objectives.md, "Pictures: a floor under the variety of the tune's own pictures")
    variety_floor: float = setting(0.0, "weight of a floor under the spread of pictures the tune draws itself as it "
                                        "learns (8 a step, 6 steps from fresh noise, with gradients through every "
                                        "step): below the kept set's spread it pulls them apart, a change they all "
                                        "share is free (0 = off; Stable Diffusion 1.x/2.x models up to 256 px, such "
                                        "as the built-in; a tune then takes 3 to 9 times as long on a CPU)",
                                   min=0, max=1000, label="Variety floor")
    # the tune's own pictures pulled toward what the keeps have and the drops lack (a logistic model on their 8x8
    # features), no further than the kept set: with variety_floor 3, 76 of 96 on seeds 0-5 (the default 76), the
    # largest lift on tone and colour, and the wrong way on three of the suite's six criteria (negative space,
    # symmetry, a centred drawing: docs/objectives.md, "Pictures: a pull toward what the keeps have")
    preference_pull: float = setting(0.0, "weight of a pull on pictures the tune draws itself (as variety_floor's) "
                                          "toward what the kept pictures have and the dropped ones lack, as a "
                                          "logistic model on their 8x8 features learns it from this round's keeps "
                                          "and drops; none past the kept set's own level. For a preference of "
                                          "colour or tone: on layout it can go the wrong way (0 = off; needs "
                                          "drops; Stable Diffusion 1.x/2.x up to 256 px)",
                                     min=0, max=1000, label="Preference pull")
    # a tune on pictures drawn at a prompt strength learned that strength again with the prompt's prediction alone: on
    # the base's own 32 pictures it moved them and narrowed them to 0.65x and 0.80x their variety (guided: 0.86x and
    # 0.89x; benchmarks/image_null_tune.py, seeds 0 and 1); on the built-in
    # protocols 76 of 96, 39 of 48 and 20 of 24 likeness, the sum 1.635 against 1.604, variety in 17 of 24 rule's runs
    # against 12 (docs/objectives.md, "Pictures: the tune learns the mix guidance draws")
    guided: bool | None = setting(None, "learn each picture as the sampler draws it, the prediction with its prompt and "
                                         "without mixed at its prompt strength, at the learning rate over that "
                                         "strength (the mix moves that many times as far), not the prediction with "
                                         "the prompt alone, which learns the strength again and draws narrower; "
                                         "empty: on for Stable Diffusion 1.x/2.x (the built-in), where it is "
                                         "measured, off elsewhere (a step costs about twice as much)",
                                  label="Learn as guidance draws")
    min_snr_gamma: float = setting(0.0, "weigh each training row by min(SNR, gamma) / (SNR + 1) for v-prediction "
                                        "(/ SNR for noise prediction), scaled to average 1 (Min-SNR, Hang et al. "
                                        "2023; kohya's min_snr_gamma, commonly 5): the noisiest steps, where the "
                                        "layout is chosen, and the last details count less (0 = off; noise-"
                                        "predicting models only)", min=0, max=1000, label="Min-SNR gamma")
    stop_narrowing: float = stop_narrowing_setting("pictures")
    size: int = setting(0, "training resolution in pixels; 0 = the kept pictures' own size", min=0, max=4096)
    train_text_encoder: bool = setting(False, "also tune the text encoder (slower; learns prompt words)")
    gradient_checkpointing: bool | None = setting(None, "trade speed for memory; empty: on for a GPU")
    offload_encoders: bool = setting(True, "move the frozen encoders off the GPU while tuning")
    quantize: str = setting("none", "the frozen base in fewer bits (QLoRA-style): int8 through torchao (CPU and "
                                    "GPU), nf4 through bitsandbytes (CUDA)", choices=QUANTIZE)
