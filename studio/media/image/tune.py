"""The image LoRA tune: peft LoRA on the denoiser's attention (optionally the CLIP text encoders).

What differs between model families (how prompts are encoded, what the denoiser takes, the
training target, which modules get LoRA) lives in ``families.py``; this file is the one tune
they share.  Everything that does not change during a tune is computed once, when the task is
built: the VAE latents of the curated pictures and every prompt embedding (unless a text
encoder trains).  A step then costs one denoiser forward and backward.  On a GPU the base runs
in bf16 with gradient checkpointing, and the text encoders and VAE wait in CPU memory while the
denoiser trains (the cache holds all a step needs); the LoRA weights train in fp32.

With ``objective`` ``kto`` and dropped pictures (Diffusion-KTO, Li et al. 2024) each batch draws the dropped
pictures in their share of the task's pictures, at most half of the batch (a few drops beside many keeps drawn
up to half undid the keeps), and the rest from the kept ones; both the tune and the starting model (the adapter
at its starting weights: a new LoRA adds zero, a parent's is the parent) denoise the same noisy latents,
and the implicit reward of a picture is ``reference's error - tune's error`` (per-pixel MSE against the
training target), which ``studio.preference.kto_loss`` turns into the KTO loss with the image ``beta``
(docs/objectives.md); ``sft_weight`` adds the kept rows' mean error, sft's own loss, beside it.  The starting
weights are copied when the task is built, before any step, so a resumed tune rebuilds the same reference.
With ``dpo`` (Diffusion-DPO, Wallace et al. 2024) each batch is half a batch of (kept, dropped) pairs of one
prompt and shape, a pair's two pictures noised with the same noise at the same timestep, and
``studio.preference.dpo_loss`` widens the kept picture's reward over its dropped one's (``sft_weight`` as above).

With ``stop_narrowing`` above 0 the trainer looks after each quarter of the tune (``look_for_narrowing``): 16
trial pictures from the unsaved adapter on fixed seeds, and the tune ends at its last good look once they are
less varied than that share of the kept set (off by default: docs/objectives.md measures what it costs).

``save`` writes the standard diffusers LoRA folder (``pytorch_lora_weights.safetensors`` with
its LoRA configs as metadata) through the pipeline class's own ``save_lora_weights``, so stock
``<ThatPipeline>.load_lora_weights(folder)`` reads it.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Sequence

from studio.adapters import extrapolated
from studio.errors import StudioError
from studio.medium import Candidate
from studio.preference import RewardLog, dpo_loss, kto_loss, same_prompt_pairs, tune_beta
from studio.training import batch_rows, trial_groups

from .families import CLIP_ATTENTION, family_of, flow_sigmas
from .model import ImageHandle, lora_source
from .settings import ImageGenerate, ImageTune

ADAPTER = "studio_train"  # the adapter being trained, by its peft name
DRAWN_PICTURES = 8  # pictures the tune draws itself a step, for variety_floor and preference_pull
DRAWN_STEPS = 6  # the deterministic (DDIM) steps each takes
DRAWN_MAX_SIZE = 256  # pixels: the largest side it draws at (measured only on the built-in's 64)
PULL_L2 = 1.0  # preference_pull's logistic model: a strong ridge, so 16 pictures in 192 numbers are not split
# perfectly (at the scorer's 0.01 every kept picture fits at p ~ 1 and "as kept-like as the kept set" bounds nothing)
# where ``guided`` learns the sampler's mix: a model whose pipeline's unguided half is the negative prompt's (or the
# empty prompt's) embedding (SDXL's default unguided half is zeros, Flux.1's guidance is distilled: unmeasured there)
GUIDED_FAMILIES = ("Stable Diffusion 1.x/2.x",)
TRIAL_PICTURES = 16  # a look's pictures (training.py), the kept pictures' prompts and settings in turn


def min_snr_weights(alphas_cumprod, gamma: float, prediction: str):
    """Min-SNR-gamma loss weights per training timestep (Hang et al. 2023): min(SNR, gamma) / (SNR + 1) for a
    v-prediction target, min(SNR, gamma) / SNR for a noise target, scaled so their mean over the timesteps is
    1 (the loss keeps its scale, and with it a preference tune's beta)."""
    import torch

    a = alphas_cumprod.double()
    snr = a / (1 - a).clamp(min=1e-12)
    weights = snr.clamp(max=gamma) / (snr + 1 if prediction == "v_prediction" else snr.clamp(min=1e-12))
    return (weights / weights.mean()).float()


def _load_pictures(examples: Sequence[Candidate], width: int, height: int):
    import numpy as np
    import torch
    from PIL import Image

    rows = []
    for c in examples:
        try:
            with Image.open(c.path) as image:
                rgb = image.convert("RGB")
                if rgb.size != (width, height):
                    rgb = rgb.resize((width, height), Image.BICUBIC)
                rows.append(np.asarray(rgb, dtype=np.float32))
        except OSError as exc:
            raise StudioError(f"The image of kept candidate {c.id} cannot be read ({c.path}).") from exc
    return torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2) / 127.5 - 1.0


def _picture_sizes(examples: Sequence[Candidate]) -> list[tuple[int, int]]:
    from PIL import Image

    sizes = []
    for c in examples:
        try:
            with Image.open(c.path) as image:
                sizes.append(image.size)
        except OSError as exc:
            raise StudioError(f"The image of kept candidate {c.id} cannot be read ({c.path}).") from exc
    return sizes


def _own_noise(examples: Sequence[Candidate], latents, same_size: Sequence[bool], dtype):
    """Each picture's starting noise, drawn as the pipeline drew it (diffusers' ``randn_tensor`` with the seed's
    CPU generator, in the pipeline's dtype: a half-precision draw is not the float32 one rounded), and which
    pictures have one: those that train at the size they were made at (a resized picture's noise is not the one
    it came from)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    noise = torch.cat([randn_tensor((1, *latents.shape[1:]), dtype=dtype,
                                    generator=[torch.Generator("cpu").manual_seed(int(c.seed))]).float()
                       for c in examples])
    return noise, torch.tensor([bool(s) for s in same_size])


def bucket_shape(width: int, height: int, native: int, multiple: int = 16) -> tuple[int, int]:
    """The (width, height) a picture trains at: its own shape, in multiples of ``multiple``, scaled down
    (aspect kept) only when it has more than 4x the pixels of the model's native square."""
    scale = min(1.0, (4 * native * native / max(1, width * height)) ** 0.5)
    return (max(multiple, int(width * scale) // multiple * multiple),
            max(multiple, int(height * scale) // multiple * multiple))


def _drop_adapter(module) -> None:
    if ADAPTER not in getattr(module, "peft_config", {}):
        return
    if hasattr(module, "delete_adapters"):  # a diffusers model
        module.delete_adapters(ADAPTER)
    else:  # a transformers text encoder: through peft's layers (transformers' own method wants a newer peft)
        from diffusers.utils.peft_utils import delete_adapter_layers

        delete_adapter_layers(module, ADAPTER)


def _activate(module) -> None:
    """Make the training adapter the active one in every LoRA layer of ``module`` (peft's own switch:
    transformers' ``set_adapter`` refuses peft versions older than it wants)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for layer in module.modules():
        if isinstance(layer, BaseTunerLayer):
            layer.set_adapter(ADAPTER)


class ImageTuneTask:
    """A LoRA fine-tune of a diffusers pipeline on curated candidates (``studio.training`` drives it)."""

    def __init__(self, handle: ImageHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None, prior: Sequence[Candidate] = (), dropped: Sequence[Candidate] = ()):
        import torch

        if not examples:
            raise StudioError("The kept set is empty; keep some candidates before tuning.")
        # no drops: the kept set alone whatever the objective (the engine's tune says so in its note)
        self.objective = str(settings.get("objective", "sft")) if dropped else "sft"
        self.reward_log = RewardLog()  # the last preference batch's rewards, for the step's log
        if self.objective not in ("sft", "kto", "dpo"):
            raise StudioError(f"The image tune learns with sft, kto or dpo, not {self.objective}.")
        self.beta = tune_beta(settings, parent_adapter)
        self.sft_weight = float(settings.get("sft_weight", 0.0)) if self.objective != "sft" else 0.0
        # prior preservation: the batch's un-kept pictures after the kept ones, this share of every batch
        self.prior_weight = float(settings["prior_weight"]) if prior and self.objective == "sft" else 0.0
        self.kept_rows = len(examples)
        # after the kept pictures: the prior ones (sft) or the dropped ones (kto, dpo)
        examples = [*examples, *(dropped if self.objective != "sft" else prior if self.prior_weight > 0 else ())]
        pipe = handle.pipe
        self.family = family_of(pipe)
        self.handle, self.pipe, self.device = handle, pipe, handle.device
        self.denoiser = getattr(pipe, self.family.denoiser)
        self.batch_size = int(settings["batch_size"])
        self.mirror = bool(settings["mirror"])
        self.train_text = bool(settings["train_text_encoder"])
        self.rank = int(settings["rank"])
        conv = settings.get("conv")
        cross = settings["layers"] == "cross"
        if cross and (conv or settings.get("conv_alpha") is not None):
            raise StudioError("layers 'cross' adapts the cross-attention alone; leave conv and conv_alpha empty.")
        if conv and not self.family.conv_targets:
            raise StudioError(f"{self.family.name} has no convolutions in its denoiser to adapt; tune with conv off.")
        if settings.get("conv_alpha") is not None and not self.family.conv_targets:
            raise StudioError(f"{self.family.name} has no convolutions in its denoiser; leave conv_alpha empty.")
        if settings.get("conv_alpha") is not None and conv is False:
            raise StudioError("conv_alpha sets the alpha of the convolutions' LoRA; turn conv on too, or leave it empty.")
        # empty: wherever the family has convolutions, unless the cross-attention alone is adapted
        conv = bool(self.family.conv_targets) and not cross if conv is None else bool(conv)
        self.targets = (list(self.family.cross_targets) if cross else
                        [*self.family.lora_targets, *(self.family.conv_targets if conv else ())])
        self.alpha = float(settings["alpha"] if settings["alpha"] is not None else ImageTune.alpha_per_rank * self.rank)
        # the convolutions' own alpha (kohya's conv_alpha); empty: half the attention's (ImageTune.conv_alpha_share)
        self.conv_alpha = (None if not conv else float(settings["conv_alpha"]) if settings.get("conv_alpha") is not None
                           else ImageTune.conv_alpha_share * self.alpha)
        self.prompts = [c.prompt for c in examples]
        self.text_encoders = [n for n in self.family.text_encoders if getattr(pipe, n, None) is not None]
        if self.family.objective == "ddpm":
            from diffusers import DDPMScheduler

            # the training schedule of the model: betas, prediction type, zero-terminal-SNR rescaling
            self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
            self.prediction = self.noise_scheduler.config.prediction_type
        else:
            self.noise_scheduler, self.prediction = pipe.scheduler, "flow"
        self.snr_weights = None  # per training timestep, when min_snr_gamma is set
        self.min_timestep = float(settings["min_timestep"])
        gamma = float(settings.get("min_snr_gamma") or 0.0)
        if gamma:
            if self.prediction == "flow":
                raise StudioError(f"{self.family.name} learns by flow matching; min_snr_gamma is for noise-predicting "
                                  "models such as SD 1.5 and SDXL: leave it at 0.")
            self.snr_weights = min_snr_weights(self.noise_scheduler.alphas_cumprod, gamma, self.prediction)
        for name, part in pipe.components.items():
            if isinstance(part, torch.nn.Module):
                part.requires_grad_(False)

        # aspect-ratio buckets: each picture trains at its own shape (a portrait set as portraits); a
        # "size" setting trains everything as that square instead
        square = int(settings["size"])
        sizes = _picture_sizes(examples)
        shapes = [(square, square)] * len(examples) if square else [bucket_shape(w, h, handle.native_size)
                                                                   for w, h in sizes]
        self.own_noise = float(settings.get("own_noise") or 0.0)
        self.empty_prompt = float(settings.get("empty_prompt") or 0.0)
        guided = settings.get("guided")  # empty: on wherever the sampler's mix is the one learned (GUIDED_FAMILIES)
        self.guided = self.family.name in GUIDED_FAMILIES if guided is None else bool(guided)
        self.lr_scale = 1.0  # training.run_tune's rate times this (guided: over the prompt strength)
        if self.guided and self.family.name not in GUIDED_FAMILIES:
            raise StudioError(f"guided is for Stable Diffusion 1.x/2.x models, not {self.family.name}; leave it off.")
        self.variety_floor = float(settings.get("variety_floor") or 0.0)
        self.preference_pull = float(settings.get("preference_pull") or 0.0)
        self.size = max(max(s) for s in shapes)
        self.buckets: list[dict[str, Any]] = []  # shape, its kept rows, its prior rows, its latents
        with torch.no_grad():  # the cache: latents and prompt embeddings, once per tune
            vae = pipe.vae
            shift = getattr(vae.config, "shift_factor", None) or 0.0
            for shape in sorted(set(shapes)):
                rows = [i for i, s in enumerate(shapes) if s == shape]
                pictures = _load_pictures([examples[i] for i in rows], *shape)
                kept = [i for i in rows if i < self.kept_rows]
                order = kept + [i for i in rows if i >= self.kept_rows]
                position = {row: n for n, row in enumerate(rows)}
                def encode(batch):  # VAE latents, 16 pictures at a time, in the bucket's row order
                    latents = [vae.encode(batch[i:i + 16].to(self.device, vae.dtype)).latent_dist.mean.float()
                               for i in range(0, len(batch), 16)]
                    return ((torch.cat(latents) - shift) * vae.config.scaling_factor)[[position[i] for i in order]]

                bucket = {"shape": shape, "rows": torch.tensor(order), "kept": len(kept), "latents": encode(pictures)}
                if self.own_noise:
                    bucket["own"] = _own_noise([examples[i] for i in order], bucket["latents"],
                                               [sizes[i] == shape for i in order], self.denoiser.dtype)
                if self.mirror:  # the mirror images encoded, not the latents flipped: a VAE's latent is not symmetric
                    bucket["mirrored"] = encode(pictures.flip(-1))
                self.buckets.append(bucket)
            if self.objective == "sft":  # a bucket of prior rows alone never trains (dropped ones do, under kto)
                self.buckets = [b for b in self.buckets if b["kept"]]
            if self.objective == "dpo":  # each bucket's (kept, dropped) pairs of one prompt, by position in it
                for b in self.buckets:
                    prompts = [self.prompts[i] for i in b["rows"].tolist()]
                    b["pairs"] = torch.tensor([(i, b["kept"] + j) for i, j in same_prompt_pairs(
                        prompts[:b["kept"]], prompts[b["kept"]:])], dtype=torch.long).view(-1, 2)
                self.buckets = [b for b in self.buckets if len(b["pairs"])]
                if not self.buckets:
                    raise StudioError("The dpo objective needs a prompt with both a kept and a dropped picture of "
                                      "the same shape; use kto for unpaired keeps and drops.")
            self.latents = self.buckets[0]["latents"] if len(self.buckets) == 1 else None
            self.cond, self.shared = self.family.encode(pipe, self.prompts, self.device, self.size)
            if self.empty_prompt:  # the empty prompt's embedding, what guidance's unguided half sees
                empty = self.family.encode(pipe, [""], self.device, self.size)[0]
                self.empty = {k: v.to(self.cond[k].dtype) for k, v in empty.items() if k != "time_ids"}
            if self.guided:  # guidance's other half: each picture's negative prompt, or none; its prompt strength
                drawn_with = [ImageGenerate.parse(c.params, "image") for c in examples]
                self.negatives = [p.negative_prompt for p in drawn_with]
                self.uncond = self.family.encode(pipe, self.negatives, self.device, self.size)[0]
                self.guidance = torch.tensor([float(p.guidance) for p in drawn_with])
                # the mix moves w times as far as the prediction with the prompt: the same step in what the sampler
                # draws is the rate over the kept pictures' mean prompt strength (4e-3 at the built-in's 4: 1e-3)
                self.lr_scale = 1.0 / max(1.0, float(self.guidance[:self.kept_rows].mean()))
            if "time_ids" in self.cond:  # SDXL's size conditioning: each picture's own shape
                self.cond["time_ids"] = torch.tensor([[h, w, 0, 0, h, w] for w, h in shapes],
                                                     dtype=self.cond["time_ids"].dtype, device=self.cond["time_ids"].device)
            if self.variety_floor or self.preference_pull:
                self._prepare_drawing(examples[:self.kept_rows], examples[self.kept_rows:], shapes[0])

        from .memory import check_fits, quantize_base, tune_need

        self.quantize = str(settings["quantize"])
        checkpointing = (settings["gradient_checkpointing"] if settings["gradient_checkpointing"] is not None
                         else self.device.startswith("cuda"))
        # guided denoises every row twice, in one pass (its unguided and its prompted half)
        rows = self.batch_size * (2 if self.guided else 1)
        self.memory_need = tune_need(handle, self.family, shapes, rows, self.rank, self.quantize,
                                     checkpointing, bool(settings["offload_encoders"]), self.targets)
        check_fits(self.memory_need, self.device, f"This tune (rank {self.rank}, batch {self.batch_size}, "
                   f"{max(w for w, _ in shapes)}x{max(h for _, h in shapes)})",
                   "set quantize=int8 or nf4, lower batch_size or rank, or train at a smaller size")
        quantize_base(self.denoiser, self.quantize, self.device)

        self.offloaded: list[str] = []
        if settings["offload_encoders"] and self.device.startswith("cuda") and not self.train_text:
            # the cache holds all a step needs: the text encoders (Flux's T5-XXL is 9.5 GB in bf16) and
            # the VAE wait in CPU memory until ``release``
            self.offload_encoders([name for name in sorted(pipe.components)
                                   if (name.startswith("text_encoder") or name == "vae")
                                   and isinstance(getattr(pipe, name), torch.nn.Module)])

        with torch.random.fork_rng(devices=[]):  # the LoRA's random init follows the tune's seed
            torch.manual_seed(int(settings["seed"]))
            self._add_lora(parent_adapter)
        # recompute activations in the backward pass: on by default on a GPU, where memory is the limit
        if checkpointing:
            self.denoiser.enable_gradient_checkpointing()
        self.params = {}
        for prefix in self._lora_components():
            for name, p in getattr(pipe, prefix).named_parameters():
                if "lora_" in name and f".{ADAPTER}." in name + ".":
                    p.requires_grad_(True)
                    if p.dtype != torch.float32:  # LoRA weights train in fp32 on a bf16/fp16 base
                        p.data = p.data.float()
                    self.params[f"{prefix}.{name}"] = p
        if not self.params:
            raise StudioError(f"The model has no layers LoRA can attach to "
                              f"({', '.join(self.targets)}).")
        # the version is stored this many times as far from its start as it learned (``save``)
        self.extrapolate = float(settings.get("extrapolate", 1.0))
        # kto's and dpo's reference, and where an extrapolation starts: the adapter as it starts (zero for a new
        # LoRA, the parent's), before any step
        self.start = ({name: p.detach().clone() for name, p in self.params.items()}
                      if self.objective != "sft" or self.extrapolate != 1.0 else None)
        # the trainer's looks (training.py): trial pictures on fixed seeds, their variety against the kept set's
        self.stop_narrowing = float(settings.get("stop_narrowing") or 0.0)
        kept = examples[:self.kept_rows]
        self.look = self.look_for_narrowing if self.stop_narrowing > 0 and len(kept) > 1 else None
        if self.look is not None:
            self.trials = [(c.prompt, ImageGenerate.parse(c.params, "image").to_dict()) for c in kept]
            from studio.variety import mean_pairwise_distance

            from .scorers import image_features

            self.kept_variety = mean_pairwise_distance(image_features(kept))
            # generate() switches a version's adapter on by its folder: this key names the unsaved one
            self.trial_key = str(Path(f".{ADAPTER}-unsaved").resolve())

    def _lora_components(self) -> list[str]:
        return [self.family.denoiser] + (self.text_encoders if self.train_text else [])

    def _add_lora(self, parent_adapter: str | None) -> None:
        pipe = self.pipe
        for name in [self.family.denoiser, *self.text_encoders]:  # a tune restarted in this process starts clean
            _drop_adapter(getattr(pipe, name))
        if parent_adapter:  # a version's folder, or a LoRA file (kohya or diffusers) the studio did not make
            if not Path(parent_adapter).exists():
                raise StudioError(f"The parent version's adapter '{parent_adapter}' is missing.")
            try:
                pipe.load_lora_weights(lora_source(parent_adapter), adapter_name=ADAPTER)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise StudioError(f"The LoRA '{Path(parent_adapter).name}' does not fit this model "
                                  f"({exc.__class__.__name__}); start from a LoRA made for it.") from exc
            self.train_text = self.train_text or any(
                ADAPTER in getattr(getattr(pipe, n), "peft_config", {}) for n in self.text_encoders)
            config = self.denoiser.peft_config[ADAPTER]
            self.rank, self.alpha = int(config.r), float(config.lora_alpha)
            conv_alphas = {float(a) for k, a in (config.alpha_pattern or {}).items()
                           if k.rsplit(".", 1)[-1] in self.family.conv_targets}
            self.conv_alpha = conv_alphas.pop() if len(conv_alphas) == 1 else None
            if self.train_text:  # a parent with LoRA on some encoders only: give the others one
                for name in self.text_encoders:
                    encoder = getattr(pipe, name)
                    if ADAPTER not in getattr(encoder, "peft_config", {}):
                        self._text_lora(encoder)
        else:
            self.denoiser.add_adapter(self._config(self.targets), adapter_name=ADAPTER)
            if self.train_text:
                for name in self.text_encoders:
                    self._text_lora(getattr(pipe, name))
        self._train_adapter_alone()

    def _train_adapter_alone(self) -> None:
        """The training adapter switched on, alone, on the denoiser (and the text encoders it trains)."""
        self.pipe.enable_lora()
        self.denoiser.set_adapters([ADAPTER])
        if self.train_text:
            for name in self.text_encoders:
                _activate(getattr(self.pipe, name))

    def _text_lora(self, encoder) -> None:
        """A new LoRA on a transformers text encoder, through peft itself: what transformers' ``add_adapter``
        does, less its check for a newer peft than the one installed (transformers 5 wants peft 0.22, which
        is not released; diffusers loads a text encoder's LoRA through the same injection)."""
        from peft import inject_adapter_in_model

        try:
            inject_adapter_in_model(self._config(list(CLIP_ATTENTION)), encoder, ADAPTER)
        except ValueError as exc:  # e.g. an encoder without the attention projections the LoRA names
            self.release()  # leave the loaded model as it was
            first = str(exc).strip().splitlines()[0].rstrip(".")
            raise StudioError(f"A LoRA on the text encoder is not possible here ({first}); "
                              "tune with train_text_encoder off.") from exc
        encoder._hf_peft_config_loaded = True  # transformers' own flag: its loaders and savers see the adapter

    def _config(self, targets: list[str]):
        from peft import LoraConfig

        # peft matches a pattern's key against the end of each module's path: "conv1" is every resnet's conv1
        pattern = ({name: self.conv_alpha for name in self.family.conv_targets if name in targets}
                   if self.conv_alpha is not None else {})
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, init_lora_weights="gaussian", target_modules=targets,
                          alpha_pattern=pattern)

    # the TuneTask protocol -------------------------------------------------------------------

    def parameters(self) -> list:
        return list(self.params.values())

    def _noised(self, x0, noise, generator, paired: bool = False):
        """The noisy latents, the timesteps the denoiser sees, and the regression target; ``paired``: the second
        half of the rows at the first half's timesteps (dpo's pairs)."""
        import torch

        draws = len(x0) // 2 if paired else len(x0)
        low = self.min_timestep  # the share of the schedule below which no row is drawn
        if self.prediction == "flow":
            u = low + (1.0 - low) * torch.rand((draws,), generator=generator)
            u = u.repeat(2) if paired else u
            seq_len = (x0.shape[-2] // 2) * (x0.shape[-1] // 2)
            sigmas = flow_sigmas(self.noise_scheduler.config, u, seq_len).to(x0.device)
            s = sigmas.view(-1, 1, 1, 1)
            timesteps = sigmas * self.noise_scheduler.config.num_train_timesteps
            return (1.0 - s) * x0 + s * noise, timesteps, noise - x0
        steps = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(int(low * steps), steps, (draws,), generator=generator)
        t = (t.repeat(2) if paired else t).to(x0.device)
        noisy = self.noise_scheduler.add_noise(x0, noise, t)
        target = noise if self.prediction == "epsilon" else self.noise_scheduler.get_velocity(x0, noise, t)
        return noisy, t, target

    def _batch(self, generator):
        """This step's bucket and its rows (positions within the bucket)."""
        import torch

        bucket = self.buckets[0]
        if len(self.buckets) > 1:  # one shape per step, drawn in proportion to the pictures (or pairs) it trains on
            weights = torch.tensor([float(len(b["pairs"]) if self.objective == "dpo" else len(b["rows"])
                                          if self.objective == "kto" else b["kept"]) for b in self.buckets])
            bucket = self.buckets[int(torch.multinomial(weights, 1, generator=generator))]
        kept, total = bucket["kept"], len(bucket["rows"])
        if self.objective == "dpo":  # half a batch of pairs: their kept pictures, then their dropped ones
            pick = bucket["pairs"][torch.randint(0, len(bucket["pairs"]), (max(1, self.batch_size // 2),),
                                                 generator=generator)]
            return bucket, torch.cat([pick[:, 0], pick[:, 1]])
        if self.objective == "kto":  # kept and dropped rows in their own proportion, at most half dropped
            if kept == 0:
                return bucket, torch.randint(0, total, (self.batch_size,), generator=generator)
            # at most half: a few drops beside many keeps are not drawn up to half of every batch, where they
            # undid the keeps (23 kept, 3 dropped: 76% -> 2%, docs/objectives.md "Pictures: the bottom of the batch")
            dropped_share = min(0.5, (total - kept) / total)
            return bucket, batch_rows(kept, total, max(2, self.batch_size), dropped_share, generator)
        return bucket, batch_rows(kept, total, self.batch_size, self.prior_weight if total > kept else 0.0, generator)

    def _predict(self, idx, noisy, timesteps, blank=None):
        """The prediction the tune learns for rows ``idx`` of the task's pictures: the denoiser's with their
        prompts, or with ``guided`` the sampler's, each picture's prompt strength w mixing the two halves as
        guidance does, unguided + w (prompted - unguided); ``blank``: rows that see the empty prompt instead."""
        import torch

        if not self.guided:
            return self._denoise(idx, noisy, timesteps, blank)
        n = len(idx)
        unguided = torch.arange(2 * n) < n  # one pass for both halves: the unguided rows first
        both = self._denoise(torch.cat([idx, idx]), torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps]),
                             None if blank is None else torch.cat([blank, blank]), unguided)
        plain, prompted = both.chunk(2)
        w = self.guidance[idx.to(self.guidance.device)].to(prompted.device, prompted.dtype)
        return plain + w.view(-1, *[1] * (prompted.dim() - 1)) * (prompted - plain)

    def _denoise(self, idx, noisy, timesteps, blank=None, unguided=None):
        """The denoiser's prediction for rows ``idx`` (prompts encoded with the current text-encoder LoRA when it
        trains); ``blank``: rows that see the empty prompt; ``unguided``: rows that see their picture's negative
        prompt (or none), guidance's other half."""
        import torch

        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.startswith("cuda"))
        with autocast:
            if self.train_text:  # the text encoders learn: encode this batch's prompts with a graph
                empty = blank.tolist() if blank is not None else [False] * len(idx)
                other = unguided.tolist() if unguided is not None else [False] * len(idx)
                rows, shared = self.family.encode(self.pipe, ["" if e else self.negatives[i] if u else self.prompts[i]
                                                              for i, e, u in zip(idx.tolist(), empty, other)],
                                                  self.device, self.size)
                if "time_ids" in rows:
                    rows["time_ids"] = self.cond["time_ids"][idx.to(self.cond["time_ids"].device)]
            else:
                rows = {k: v[idx.to(v.device)] for k, v in self.cond.items()}
                if unguided is not None:
                    rows.update({k: torch.where(unguided.to(v.device).view(-1, *[1] * (v.dim() - 1)),
                                                v[idx.to(v.device)], rows[k]) for k, v in self.uncond.items()})
                if blank is not None:  # the size conditioning stays the picture's own
                    rows.update({k: torch.where(blank.to(e.device).view(-1, *[1] * (e.dim() - 1)), e, rows[k])
                                 for k, e in self.empty.items()})
                shared = self.shared
            return self.family.predict(self.pipe, noisy, timesteps, {**rows, **shared})

    @contextlib.contextmanager
    def starting_adapter(self):
        """The adapter at its starting weights for the duration (kto's reference), then back as trained."""
        import torch

        with torch.no_grad():
            trained = {name: p.detach().clone() for name, p in self.params.items()}
            for name, p in self.params.items():
                p.copy_(self.start[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(trained[name])

    def _draw(self, generator):
        """One batch: the pictures' rows, noisy latents, timesteps, regression target, and which are kept."""
        import torch

        bucket, local = self._batch(generator)
        x0 = bucket["latents"][local.to(bucket["latents"].device)]
        paired = self.objective == "dpo"  # a pair's two pictures see the same flip, noise and timestep
        draws = len(local) // 2 if paired else len(local)
        if self.mirror:  # each row its mirror image half the time (kohya's flip augmentation)
            flip = torch.rand(draws, generator=generator) < 0.5
            flip = (flip.repeat(2) if paired else flip).to(x0.device)
            x0 = torch.where(flip.view(-1, *[1] * (x0.dim() - 1)), bucket["mirrored"][local.to(x0.device)], x0)
        noise = torch.randn((draws, *x0.shape[1:]), generator=generator)
        noise = (noise.repeat(2, *[1] * (x0.dim() - 1)) if paired else noise).to(x0.device)
        if self.own_noise:  # a share of the rows at their seed's noise (mirrored with them), where they have one
            own, has = bucket["own"]
            own = own[local.to(own.device)].to(x0.device)
            if self.mirror:
                own = torch.where(flip.view(-1, *[1] * (x0.dim() - 1)), own.flip(-1), own)
            use = has[local.to(has.device)]
            if self.own_noise < 1:
                pick = torch.rand(draws, generator=generator) < self.own_noise
                use = use & (pick.repeat(2) if paired else pick)
            noise = torch.where(use.to(x0.device).view(-1, *[1] * (x0.dim() - 1)), own, noise)
        noisy, timesteps, target = self._noised(x0, noise, generator, paired)
        blank = None
        if self.empty_prompt:  # a share of the rows learned with the empty prompt (a pair's two alike)
            blank = torch.rand(draws, generator=generator) < self.empty_prompt
            blank = blank.repeat(2) if paired else blank
        return bucket["rows"][local], noisy, timesteps, target.float(), local < bucket["kept"], blank

    def _errors(self, generator):
        """One batch's per-picture denoising errors (mean squared error against the training target) under
        the tune and under the starting adapter (no gradient), and which rows are kept pictures."""
        import torch

        idx, noisy, timesteps, target, kept, blank = self._draw(generator)
        # the reference first, so the trained weights are back before the tune's graph (or a recompute) uses them
        with self.starting_adapter(), torch.no_grad():
            ref = self._row_errors(idx, noisy, timesteps, target, blank)
        return self._row_errors(idx, noisy, timesteps, target, blank), ref, kept

    def _row_errors(self, idx, noisy, timesteps, target, blank):
        """Each row's mean squared error against its target, times its timestep's Min-SNR weight when set."""
        dims = tuple(range(1, target.dim()))
        error = (self._predict(idx, noisy, timesteps, blank).float() - target).pow(2).mean(dim=dims)
        return error if self.snr_weights is None else error * self.snr_weights.to(error.device)[timesteps.long()]

    def rewards(self, generator):
        """Diffusion-KTO's implicit reward of one batch's pictures, ``reference error - tune error`` (before
        beta), and which are kept: 0 at the start, positive where the tune denoises a picture better."""
        import torch

        with torch.no_grad():
            error, ref, kept = self._errors(generator)
        return ref - error, kept

    def loss(self, step: int, generator):
        if not (self.variety_floor > 0 or self.preference_pull > 0):
            return self._objective_loss(generator)
        noise = self._drawing_noise(generator)  # before the objective's batch, from the same generator
        loss = self._objective_loss(generator)
        feats = self.drawn_features(noise)
        if self.variety_floor > 0:
            loss = loss + self.variety_floor * self.floor_loss(feats)
        if self.preference_pull > 0:
            loss = loss + self.preference_pull * self.pull_loss(feats)
        return loss

    def _prepare_drawing(self, kept: Sequence[Candidate], dropped: Sequence[Candidate],
                         shape: tuple[int, int]) -> None:
        """What the tune's own drawn pictures need, once: a deterministic sampler on the model's own schedule,
        the kept pictures' prompts (each drawn picture takes one in turn, at its prompt strength), the empty
        prompt; then the floor (the kept set's spread) and the pull's model (keeps against drops)."""
        import torch
        from diffusers import DDIMScheduler

        from studio.variety import mean_pairwise_euclidean

        from .scorers import image_features

        name = "variety_floor" if self.variety_floor else "preference_pull"
        if self.family.objective != "ddpm" or "text_embeds" in self.cond:
            raise StudioError(f"{name} is for Stable Diffusion 1.x/2.x models, not {self.family.name}; "
                              "leave it at 0.")
        if max(shape) > DRAWN_MAX_SIZE:
            raise StudioError(f"{name} is measured only on models up to {DRAWN_MAX_SIZE} px, such as the "
                              f"built-in; at {max(shape)} px holding 8 pictures' every step with gradients needs "
                              "memory that is unmeasured: leave it at 0.")
        if self.variety_floor and len(kept) < 2:
            raise StudioError("variety_floor needs at least two kept pictures: it holds the tune's pictures as "
                              "varied as the kept ones.")
        if self.preference_pull and (self.objective == "sft" or not dropped):
            raise StudioError("preference_pull learns what the kept pictures have and the dropped ones lack, and "
                              "this tune has no dropped pictures (objective sft): use kto or dpo with drops, or "
                              "leave it at 0.")
        self.drawing_scheduler = DDIMScheduler.from_config(self.pipe.scheduler.config)
        self.drawing_scheduler.set_timesteps(DRAWN_STEPS, device=self.device)  # DDIM keeps no state between steps
        drawn = [kept[i % len(kept)] for i in range(DRAWN_PICTURES)]
        prompt = self.family.encode(self.pipe, [c.prompt for c in drawn], self.device, self.size)[0]
        empty = self.family.encode(self.pipe, [""] * DRAWN_PICTURES, self.device, self.size)[0]
        self.drawing_cond = {k: torch.cat([empty[k], prompt[k]]) for k in prompt}
        self.drawing_guidance = torch.tensor([float(ImageGenerate.parse(c.params, "image").guidance)
                                              for c in drawn], device=self.device).view(-1, 1, 1, 1)
        self.drawing_shape = (self.denoiser.config.in_channels, shape[1] // self.pipe.vae_scale_factor,
                              shape[0] // self.pipe.vae_scale_factor)
        if self.variety_floor:
            self.floor = mean_pairwise_euclidean(image_features(kept))
        if self.preference_pull:
            self._fit_pull(image_features(kept), image_features(dropped))

    def _fit_pull(self, kept, dropped) -> None:
        """The pull's model: the ``preference`` scorer's logistic regression (``fit_preference``) on the kept
        (1) and dropped (0) pictures' unit-length 8x8 features, and its mean probability over the kept set,
        the level the pull stops at."""
        import numpy as np
        import torch

        from studio.scoring import fit_preference
        from studio.variety import unit_rows

        features = unit_rows(np.concatenate([kept, dropped]))
        labels = np.array([1.0] * len(kept) + [0.0] * len(dropped))
        model = fit_preference(features, labels, l2=PULL_L2)
        self.pull_level = float(model(features[:len(kept)]).mean())
        # in double, as measured; Apple's GPU has no double
        self.pull_dtype = torch.float32 if str(self.device).startswith("mps") else torch.float64
        self.pull_model = tuple(torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=self.pull_dtype,
                                                device=self.device)
                                for v in (model.mean, model.std, model.weights, model.bias))

    def _drawing_noise(self, generator):
        import torch

        noise = torch.randn((DRAWN_PICTURES, *self.drawing_shape), generator=generator).to(self.device)
        return noise * self.drawing_scheduler.init_noise_sigma

    def drawn_features(self, latents):
        """DRAWN_PICTURES pictures drawn by the tune as it stands from ``latents`` (DRAWN_STEPS deterministic
        steps, with gradients through every step and the VAE), as their 8x8 features (``picture_features``)."""
        import torch
        import torch.nn.functional as F

        pipe, sched = self.pipe, self.drawing_scheduler
        for t in sched.timesteps:
            both = self.family.predict(pipe, torch.cat([latents, latents]), t.expand(2 * DRAWN_PICTURES),
                                       self.drawing_cond).float()
            unguided, guided = both.chunk(2)
            latents = sched.step(unguided + self.drawing_guidance * (guided - unguided), t, latents).prev_sample
        vae = pipe.vae
        pixels = vae.decode((latents / vae.config.scaling_factor).to(vae.dtype)).sample.float().clamp(-1, 1)
        small = F.interpolate(pixels, size=(8, 8), mode="bilinear", antialias=True, align_corners=False)
        return small.permute(0, 2, 3, 1).reshape(DRAWN_PICTURES, -1)

    def floor_loss(self, feats):
        """How far the drawn pictures' spread (the mean Euclidean distance between their features, so a change
        they all share is not a narrowing) is below the kept set's, as a share of it: 0 when they are as spread,
        1 when all alike."""
        import torch

        n = len(feats)
        spread = torch.cdist(feats, feats).sum() / (n * (n - 1))
        return torch.relu(1.0 - spread / max(self.floor, 1e-9))

    def pull_loss(self, feats):
        """How far the drawn pictures fall short, on average, of the kept set's mean probability under the
        keeps-against-drops model: each picture is pulled toward what the keeps have and the drops lack, and no
        further once it is as kept-like as the kept set is."""
        import torch

        mean, std, weights, bias = self.pull_model
        feats = feats.to(self.pull_dtype)
        unit = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
        p = torch.sigmoid(((unit - mean) / std) @ weights + bias)
        return torch.relu(self.pull_level - p).mean().float()

    def _objective_loss(self, generator):
        import torch
        import torch.nn.functional as F

        if self.objective == "kto":
            error, ref, kept = self._errors(generator)
            # minus the denoising error stands in for a log-likelihood (Diffusion-KTO): reward = ref - error
            self.reward_log.hold(ref - error, kept)
            loss = kto_loss(-error, -ref, kept, self.beta)
            if self.sft_weight > 0 and bool(kept.any()):  # sft's loss on the kept rows beside it
                loss = loss + self.sft_weight * error[kept.to(error.device)].mean()
            return loss
        if self.objective == "dpo":  # Diffusion-DPO: each pair's kept picture denoised better, against its dropped one
            error, ref, _ = self._errors(generator)
            half = len(error) // 2
            self.reward_log.hold(ref - error, torch.arange(len(error), device=error.device) < half)
            loss = dpo_loss(-error[:half], -ref[:half], -error[half:], -ref[half:], self.beta)
            return loss + self.sft_weight * error[:half].mean() if self.sft_weight > 0 else loss
        idx, noisy, timesteps, target, _, blank = self._draw(generator)
        if self.snr_weights is None:
            return F.mse_loss(self._predict(idx, noisy, timesteps, blank).float(), target)
        return self._row_errors(idx, noisy, timesteps, target, blank).mean()

    def look_for_narrowing(self) -> str | None:
        """TRIAL_PICTURES pictures from the tune as it stands, the kept prompts in turn on fixed seeds (never a
        candidate's: TRIAL_SEED up); one sentence when their variety (the studio's, mean pairwise distance) is
        below ``stop_narrowing`` times the kept set's, None otherwise."""
        import io

        from PIL import Image

        from studio.variety import mean_pairwise_distance

        from .generate import generate
        from .scorers import picture_features

        was_active, known = self.handle.active, self.trial_key in self.handle.adapters
        self.handle.adapters[self.trial_key] = ADAPTER
        offloaded = self.offloaded
        self.restore_encoders()  # the pipeline draws with its encoders and VAE on the denoiser's device
        features = []
        try:
            for prompt, params, seeds in trial_groups(self.trials, TRIAL_PICTURES):
                for made in generate(self.handle, prompt, seeds, params, self.trial_key):
                    with Image.open(io.BytesIO(made.files["png"])) as picture:
                        features.append(picture_features(picture))
        finally:  # back to training: the tune's adapter alone, every weight of it learning
            if not known:
                del self.handle.adapters[self.trial_key]
            self.handle.active = was_active
            self._train_adapter_alone()
            for p in self.params.values():
                p.requires_grad_(True)
            if offloaded:  # and out of the way again while the denoiser trains
                self.offload_encoders(offloaded)
        variety = mean_pairwise_distance(features)
        if variety < self.stop_narrowing * self.kept_variety:
            return (f"its {len(features)} trial pictures were {variety / self.kept_variety:.2f}x as varied as the "
                    f"kept set")
        return None

    def adapter_state(self) -> dict[str, Any]:
        return {name: p.detach() for name, p in self.params.items()}

    def load_adapter_state(self, state: dict[str, Any]) -> None:
        import torch

        missing = set(self.params) - set(state)
        if missing:
            raise StudioError("The checkpoint does not match this tune's LoRA layers; start the tune again.")
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state[name].to(p.device, p.dtype))

    def state_dicts(self) -> dict[str, dict[str, Any]]:
        """The LoRA weights in diffusers' layout, by component ('unet', 'transformer', 'text_encoder', ...)."""
        import torch
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        out = {}
        for prefix in [self.family.denoiser, *self.text_encoders]:
            module = getattr(self.pipe, prefix)
            if ADAPTER not in getattr(module, "peft_config", {}):
                continue
            state = get_peft_model_state_dict(module, adapter_name=ADAPTER)
            # UNet pipelines' loaders take the older diffusers names, which have none for a convolution's LoRA: a
            # LoCon keeps peft's names throughout (a mix of the two loses the attention's LoRA in SDXL's loader)
            if self.family.denoiser == "unet" and not any(".conv" in k for k in state):
                state = convert_state_dict_to_diffusers(state)
            # copies: on a CPU float/contiguous/cpu would hand back the live weights themselves
            out[prefix] = {k: v.detach().float().cpu().clone(memory_format=torch.contiguous_format)
                           for k, v in state.items()}
        return out

    def save(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with extrapolated(self.params, self.start, self.extrapolate):  # 1: as trained
            states = self.state_dicts()
        layers, metadata = {}, {}
        for prefix, state in states.items():
            config = getattr(self.pipe, prefix).peft_config[ADAPTER].to_dict()
            layers[f"{prefix}_lora_layers"] = state
            metadata[f"{prefix}_lora_adapter_metadata"] = {k: sorted(v) if isinstance(v, set) else v
                                                           for k, v in config.items()}
        type(self.pipe).save_lora_weights(str(out_dir), safe_serialization=True, **layers, **metadata)
        unet_config = getattr(self.denoiser, "config", {})
        (out_dir / "studio_adapter.json").write_text(json.dumps(
            {"rank": self.rank, "alpha": self.alpha, "conv_alpha": self.conv_alpha, "family": self.family.name,
             "pipeline": type(self.pipe).__name__, "components": sorted(states),
             "text_encoder": any(p != self.family.denoiser for p in states),
             "layers_per_block": unet_config.get("layers_per_block") if self.family.denoiser == "unet" else None,
             "base_model": self.handle.model}, indent=1), encoding="utf-8")

    def offload_encoders(self, names: list[str]) -> None:
        """Move these parts of the model (encoders, VAE) to CPU memory while the denoiser trains."""
        import torch

        for name in names:
            getattr(self.pipe, name).to("cpu")
        self.offloaded = list(names)
        torch.cuda.empty_cache()

    def restore_encoders(self) -> None:
        """Put the encoders the cache let go back on the model's device."""
        for name in self.offloaded:
            getattr(self.pipe, name).to(self.device)
        self.offloaded = []

    def release(self) -> None:
        """Remove the training adapter from the loaded model (after ``save``); the encoders come back."""
        self.restore_encoders()
        for name in [self.family.denoiser, *self.text_encoders]:
            _drop_adapter(getattr(self.pipe, name))


build_task = ImageTuneTask  # the medium contract's name for the task builder (studio.medium)
