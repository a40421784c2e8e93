"""The image medium: any diffusers text-to-image pipeline, the embedded default in ``assets/image``.

Cheap to import: torch, diffusers and transformers load only inside the hooks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ...medium import Candidate, Medium
from .settings import ImageGenerate, ImageTune

ASSETS = Path(__file__).resolve().parent / "assets"  # the built-in model (package data)


class ImageMedium(Medium):
    name = "image"
    main_ext = "png"
    default_scorer = "colourfulness"
    label = "Image"
    order = 10
    placeholder = "What to draw, e.g. a red circle on a blue background"
    export_formats = {
        "diffusers": "the LoRA for diffusers (load_lora_weights)",
        "kohya": "one .safetensors LoRA for AUTOMATIC1111, ComfyUI and kohya",
        "imagefolder": "the kept pictures with their prompts, as an image-folder dataset",
    }
    generate_settings = ImageGenerate

    @property
    def prompt_help(self) -> str:  # type: ignore[override]
        """What the built-in sketchbook draws, in its own words (the page shows it under the prompt)."""
        from .scenes import COLOURS, POSITIONS, SHAPES, TEXTURES

        return ("The built-in model is a 64 px sketchbook for trying the loop: soft blobs, not pictures to keep. "
                f"It knows shapes ({', '.join(SHAPES)}), colours ({', '.join(COLOURS)}), counts (a, two, three), "
                f"sizes (small, big), places ({', '.join(POSITIONS)}) and textures ({', '.join(TEXTURES)}), "
                "e.g. *three red stars on a white background*. For real pictures pick a model under **Model** "
                "(docs/models.md).")
    tune_settings = ImageTune

    def prompt_length(self, model: str, prompt: str) -> Any:
        from .model import prompt_length

        return prompt_length(model, prompt)

    def embed(self, handle: Any, candidates: Sequence[Candidate]):
        from .scorers import image_features

        return image_features(candidates)
