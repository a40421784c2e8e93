"""Loading models, shared by every medium: device, dtype, local or hub, safetensors only, the error sentence.

- device: CUDA, then Apple MPS, then the CPU (``pick_device``);
- dtype: bf16 on a CUDA card that has it, else fp16 on CUDA and MPS, fp32 on the CPU; the
  artist overrides it with ``$STUDIO_DTYPE`` (``float32``, ``bfloat16``, ``float16`` or ``auto``);
- a model is a local folder, a local single ``.safetensors`` file (image checkpoints), or a hub
  id (``owner/name``, read from the Hugging Face cache, downloaded only by ``studio models pull``);
- weights only from safetensors, never a model's own remote code;
- a failed load is one sentence (``load_error``), whatever the library raised;
- ``free_memory`` gives back a dropped model's memory at once (the engine keeps one model per medium).
"""
from __future__ import annotations

import functools
import gc
import os
import threading
from pathlib import Path
from typing import Any, Callable

from .errors import StudioError, hub_reason

DTYPES = ("auto", "float32", "bfloat16", "float16")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pick_device(device: str | None = None) -> str:
    """``device`` when given, else the best this machine has: cuda, mps, cpu."""
    if device:
        return str(device)
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def dtype_name(device: str, choice: str | None = None) -> str:
    """The dtype a model runs in on ``device``: ``choice``, else ``$STUDIO_DTYPE``, else by the device."""
    choice = (choice or os.environ.get("STUDIO_DTYPE") or "auto").strip().lower()
    if choice not in DTYPES:
        raise StudioError(f"Unknown dtype '{choice}'; use one of {', '.join(DTYPES)}.")
    if choice != "auto":
        return choice
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"


def pick_dtype(device: str, choice: str | None = None):
    import torch

    return getattr(torch, dtype_name(device, choice))


def looks_local(model: str) -> bool:
    """A path (it exists, or starts like one, or has more slashes than a hub id) rather than a hub id."""
    return Path(model).expanduser().exists() or model.startswith((".", "/", "~")) or model.count("/") > 1


def check_weights(folder: Path, what: str) -> None:
    """One sentence when ``folder`` (searched recursively) holds pickle weights only or no weights at all."""
    safe = any(folder.rglob("*.safetensors"))
    if safe:
        return
    pickled = [p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickled:
        raise StudioError(f"The {what} in '{folder}' has pickle weights only ({pickled[0].name}); studio loads "
                          "safetensors weights only (convert them first).")
    raise StudioError(f"The {what} folder '{folder}' holds no .safetensors weights.")


def local_path(model: str, what: str, files: bool = False) -> Path:
    """The resolved local folder (or, with ``files``, a ``.safetensors`` file) ``model`` names."""
    path = Path(model).expanduser()
    if not path.exists():
        raise StudioError(f"The {what} '{model}' does not exist.")
    if path.is_file():
        if not files:
            raise StudioError(f"The {what} '{model}' is a file; give the folder that holds the model.")
        if path.suffix != ".safetensors":
            raise StudioError(f"The {what} file '{path.name}' is not a .safetensors file; studio loads "
                              "safetensors weights only (convert it first).")
    return path.resolve()


def load_error(what: str, model: str, exc: BaseException) -> StudioError:
    """One sentence for a load that failed inside a library (an empty message included)."""
    text = hub_reason(exc)
    if "trust_remote_code" in text or "remote code" in text:
        return StudioError(f"The {what} '{model}' needs its own remote code, which studio never runs.")
    if type(exc).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or "offline" in text.lower() \
            or "couldn't connect" in text:
        return StudioError(f"The {what} '{model}' is not on this machine; get it first with "
                           f"`studio models pull {model}` (or give a local folder).")
    return StudioError(f"The {what} '{model}' could not be loaded: {text}.")


def free_memory() -> None:
    """Give back the memory of models nothing refers to any more, now rather than at the next collection
    (a pipeline's modules refer to one another in cycles); the GPU's cache is emptied too."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def hub_snapshot(model: str, what: str) -> Path:
    """The local snapshot folder of hub id ``model`` in the Hugging Face cache (never a download here).

    Read from the cache's own layout (``models--OWNER--NAME/refs/main`` -> ``snapshots/COMMIT``), so a
    snapshot ``studio models pull`` fetched without a repo's pickle files counts as there."""
    from huggingface_hub import constants

    if "\x00" in model or model.count("/") != 1 or not all(model.split("/")):
        raise StudioError(f"The {what} '{model}' is neither a folder on this machine nor a hub id (owner/name).")
    repo = Path(constants.HF_HUB_CACHE) / f"models--{model.replace('/', '--')}"
    snapshots = repo / "snapshots"
    ref = repo / "refs" / "main"
    folder = None
    if ref.is_file():
        folder = snapshots / ref.read_text(encoding="utf-8").strip()
    elif snapshots.is_dir():
        found = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
        folder = found[-1] if found else None
    if folder is None or not folder.is_dir():
        raise StudioError(f"The {what} '{model}' is not on this machine; get it first with "
                          f"`studio models pull {model}` (or give a local folder).")
    return folder


_TOKENIZER_LOCK = threading.Lock()  # one count at a time: a fast tokenizer is not safe to share between threads


@functools.lru_cache(maxsize=8)
def _tokenizer(folder: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def count_tokens(folder: Path | str, encode: Callable[[Any], list[int]]) -> tuple[int, int]:
    """How many token ids ``encode(tokenizer)`` gives and the tokenizer's ``model_max_length``, with the
    tokenizer saved in ``folder`` (loaded once, never a model's weights): how long a prompt is as it is typed."""
    with _TOKENIZER_LOCK:
        tokenizer = _tokenizer(str(folder))
        return len(encode(tokenizer)), int(tokenizer.model_max_length)
