"""The sampler a picture is drawn with: the model's own, or one of the common ones by ComfyUI's name.

Each entry is a diffusers scheduler class, the options that make it that sampler, and the name
AUTOMATIC1111 writes into a PNG's parameters.  A sampler is built from the model's own scheduler
config (its noise schedule, prediction type and timestep spacing carry over), so it changes how
the steps are taken, never what the model was trained to predict.  The ancestral and SDE samplers
add fresh noise at every step, drawn from the seed's own generator: a picture still depends on its
seed alone, not on its batch.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from studio.errors import StudioError

MODEL = "model"  # the scheduler the model ships with

# name: (diffusers class, options, AUTOMATIC1111's name)
SAMPLERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, "DPM++ 2M"),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
                     "DPM++ 2M SDE"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
}
CHOICES = (MODEL, *SAMPLERS)
SHOWN = ("the model's own", *(name for _, _, name in SAMPLERS.values()))  # the page's names: A1111's


def sampler_name(scheduler: Any, name: str) -> str:
    """The sampler as a PNG's parameters name it: AUTOMATIC1111's name, or the model's scheduler class."""
    return SAMPLERS[name][2] if name in SAMPLERS else type(scheduler).__name__


@contextlib.contextmanager
def using_sampler(pipe: Any, name: str) -> Iterator[None]:
    """Draw with ``name`` inside the block, then give the pipeline its own scheduler back."""
    if name == MODEL:
        yield
        return
    own = pipe.scheduler
    if "FlowMatch" in type(own).__name__:
        raise StudioError(f"This model draws by flow matching ({type(own).__name__}); the sampler '{name}' is for "
                          "noise-predicting models such as Stable Diffusion 1.5 and SDXL: set sampler=model.")
    import diffusers

    cls_name, options, _ = SAMPLERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(own.config, **options)
    try:
        yield
    finally:
        pipe.scheduler = own
