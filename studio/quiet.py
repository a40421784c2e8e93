"""Library chatter off: the CLI's stderr and serve's log hold studio's own lines.

transformers, diffusers and huggingface_hub print deprecation notices (FutureWarning), advisory
notices (a missing optional torchvision, a weights load report) and loading progress bars that
say nothing an artist can act on.  ``quiet_libraries`` sets their switches before they are
imported (environment variables they read once) and flips them where they already are.
Errors still surface: studio turns them into its own one sentence.
"""
from __future__ import annotations

import os
import sys
import warnings

LIBRARIES = r"(diffusers|transformers|huggingface_hub|peft|accelerate|torchao|torch)(\.|$)"
SWITCHES = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DIFFUSERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


# loggers that report at import what an artist cannot act on: torchao (the optional int8 base) says which of
# its GPU kernels this machine cannot load, and torch's pytree that torchao registers enums the old way
LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_libraries() -> None:
    """Silence library warnings, notices and progress bars in this process (and the processes it starts)."""
    import logging

    for key, value in SWITCHES.items():
        os.environ.setdefault(key, value)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARIES)
    if "huggingface_hub" in sys.modules:
        # huggingface_hub reads its switch once, at import; transformers, imported later, copies its state
        # ("Loading weights" bars), so an already imported hub is switched off here
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    quiet_diffusers()


def quiet_diffusers(importing: bool = False) -> None:
    """diffusers' own progress bars ("Loading pipeline components") have no environment switch.

    With ``importing`` (a loader about to use diffusers) diffusers is imported here if it is not yet;
    otherwise only an already imported diffusers is touched (import stays cheap)."""
    if (importing or "diffusers" in sys.modules) and os.environ.get("DIFFUSERS_VERBOSITY") == "error":
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()
