"""Loading a causal LM: a built-in one (``builtin.py``: SmolLM2, or the tiny grammar model) or any
local folder / hub id.

Safetensors only, never remote code; bf16 and SDPA attention on CUDA, float32 on CPU.
Adapters (a version's LoRA folder) are loaded once into one ``PeftModel`` and switched
by name; the base is the same model with adapters disabled, so nothing reloads.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from pathlib import Path
from typing import Any

from ...errors import StudioError, one_line
from ...loading import check_weights, hub_snapshot, load_error, local_path, looks_local, pick_device, pick_dtype
from ...medium import PromptLength


@dataclasses.dataclass
class TextHandle:
    model: Any  # the base model, or the PeftModel that wraps it once an adapter is loaded
    tokenizer: Any
    source: str  # folder or hub id it came from
    device: str
    context: int  # the most tokens the model attends to
    adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # resolved path -> adapter name
    # held while the model runs with an adapter switched on or off (a background compile shares the model)
    lock: Any = dataclasses.field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def peft(self) -> bool:
        return hasattr(self.model, "peft_config")


def _context_length(config: Any) -> int:
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def load_config(model: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=False)
    except ValueError as exc:
        if "trust_remote_code" in str(exc) or "remote code" in str(exc):
            raise StudioError(f"The model '{model}' needs its own remote code, which studio never runs.") from None
        raise StudioError(f"The model '{model}' has a configuration transformers cannot read ({one_line(exc)}).") from None
    except OSError as exc:
        if not looks_local(model):
            raise load_error("text model", model, exc) from None
        raise StudioError(f"No model configuration found at '{model}' (a local folder or a hub id).") from None


def check_causal(model: str, config: Any) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    architectures = getattr(config, "architectures", None) or []
    has_head = any("CausalLM" in a or "LMHead" in a for a in architectures)
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (architectures and not has_head):
        kind = architectures[0] if architectures else config.model_type
        raise StudioError(f"The model '{model}' ({kind}) has no causal language-model head, so it cannot write text.")


def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise StudioError(f"No usable tokenizer found with the model '{model}' ({one_line(exc)}).") from None
    if tokenizer.eos_token_id is None:
        raise StudioError(f"The tokenizer of '{model}' has no end-of-sequence token, so completions could not stop.")
    if tokenizer.pad_token_id is None:  # common for base models: pad with eos, masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load(model: str, device: str | None = None) -> TextHandle:
    from transformers import AutoModelForCausalLM

    from .builtin import resolve

    model = resolve(str(model))  # a built-in id becomes its folder (SmolLM2 is converted on first use)
    if looks_local(model):
        folder = local_path(model, "text model folder")
        check_weights(folder, "text model")
        model = str(folder)
    else:  # a hub id: the snapshot in the Hugging Face cache (``studio models pull`` fetches it)
        model = str(hub_snapshot(model, "text model"))
    device = pick_device(device)
    config = load_config(model)
    check_causal(model, config)
    tokenizer = load_tokenizer(model)
    dtype = pick_dtype(device)
    try:
        net = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, attn_implementation="sdpa",
                                                   use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise StudioError(f"The weights of '{model}' could not be loaded as safetensors "
                          f"({one_line(exc)}).") from None
    net.to(device).eval()
    net.requires_grad_(False)
    return TextHandle(model=net, tokenizer=tokenizer, source=model, device=str(device),
                      context=_context_length(config))


def saved_folder(model: str) -> Path | None:
    """The folder holding ``model``'s saved tokenizer and config (a local folder, or its snapshot in the Hugging Face
    cache); None for the built-in SmolLM2 before its first conversion.  A StudioError when it is not on this machine."""
    from .builtin import DEFAULT, converted, resolve, smollm2_folder

    if model == DEFAULT and not converted(smollm2_folder()):
        return None
    model = resolve(str(model))
    return local_path(model, "text model folder") if looks_local(model) else hub_snapshot(model, "text model")


def prompt_length(model: str, prompt: str) -> PromptLength | None:
    """The prompt's tokens (as generation wraps it: the chat template, if any) against what the model reads while
    leaving room to write: its context less one.  Loads the tokenizer and config only; None for the built-in
    SmolLM2 before its first conversion (Generate converts it)."""
    from ...loading import count_tokens
    from .prompting import prompt_ids

    folder = saved_folder(model)
    if folder is None:
        return None
    used, _ = count_tokens(folder, lambda tokenizer: prompt_ids(tokenizer, prompt))
    return PromptLength(used, _context_of(str(folder)) - 1)


def reached_limit(model: str, completion: str, params: dict[str, Any]) -> bool:
    """Whether generation cut ``completion`` off at its length limit (``prompting.cut_at_limit``, what the tune
    reads), with the model's saved tokenizer alone (never its weights): what a text's card says.  False where the
    tokenizer is not on this machine (the built-in SmolLM2 before its first conversion, a model since removed)."""
    from ...loading import count_tokens
    from .prompting import completion_ids

    limit = params.get("max_new_tokens")
    if not limit or not completion:
        return False
    try:
        folder = saved_folder(model)
        if folder is None:
            return False
        used, _ = count_tokens(folder, lambda tokenizer: completion_ids(tokenizer, completion, ended=False))
    except (StudioError, OSError, ValueError):
        return False
    return used >= int(limit)


@functools.lru_cache(maxsize=8)
def _context_of(folder: str) -> int:
    return _context_length(load_config(folder))


def _adapter_name(handle: TextHandle, folder: str) -> str:
    """Load the adapter at ``folder`` once; later calls only return its name (a tune's own adapter, not yet
    saved, is known by its name)."""
    if folder in handle.adapters:
        return handle.adapters[folder]
    key = str(Path(folder).resolve())
    if key in handle.adapters:
        return handle.adapters[key]
    if not (Path(key) / "adapter_config.json").exists():
        raise StudioError(f"No adapter found at '{folder}' (adapter_config.json is missing).")
    from peft import PeftModel

    name = f"v{len(handle.adapters) + 1}"
    if handle.peft:
        handle.model.load_adapter(key, adapter_name=name, is_trainable=False)
    else:
        handle.model = PeftModel.from_pretrained(handle.model, key, adapter_name=name, is_trainable=False)
    handle.model.eval()
    handle.adapters[key] = name
    return name


@contextlib.contextmanager
def active(handle: TextHandle, adapter: str | None, strength: float = 1.0):
    """The model to run: with ``adapter`` switched on (scaled by ``strength``), or the base."""
    with handle.lock:
        if adapter:
            from ...adapters import peft_strength

            name = _adapter_name(handle, adapter)
            handle.model.set_adapter(name)
            with peft_strength(handle.model, name, strength):
                yield handle.model
        elif handle.peft:
            with handle.model.disable_adapter():
                yield handle.model
        else:
            yield handle.model


def base_model(handle: TextHandle) -> Any:
    """The transformers model under any peft wrapper."""
    return handle.model.get_base_model() if handle.peft else handle.model
