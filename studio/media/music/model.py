"""Loading a music model: the symbolic event LM (the embedded default) or MusicGen.

The folder's ``config.json`` picks the path: ``model_type == "musicgen"`` is audio, a causal
LM whose tokenizer holds the event vocabulary is symbolic.  Weights only from safetensors,
never remote code.  Adapters (peft LoRA folders) are attached to the loaded model once and
switched by name, so changing versions never reloads the base.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ...errors import StudioError
from ...loading import hub_snapshot, load_error, pick_device

DEFAULT_MAX_BARS = 16


@dataclasses.dataclass
class MusicHandle:
    kind: str  # "symbolic" or "musicgen"
    model: Any  # GPT2/Llama LM, or MusicgenForConditionalGeneration
    tokenizer: Any  # the event tokenizer, or MusicGen's text tokenizer
    device: str
    source: str  # the folder or hub id it came from
    max_bars: int = DEFAULT_MAX_BARS  # symbolic: the longest piece it learned
    max_seconds: float = 0.0  # musicgen: the decoder's position limit in seconds
    peft: Any = None  # the PeftModel around ``model`` once an adapter was asked for
    adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # adapter folder -> peft name

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.model.config.audio_encoder.frame_rate)


def load(model: str, device: str | None = None) -> MusicHandle:
    """Load a local folder (or a MusicGen hub id); StudioError with one sentence if unusable."""
    device = pick_device(device)
    path = Path(model).expanduser()
    if path.exists():
        config_file = path / "config.json"
        if not config_file.exists():
            raise StudioError(f"The model folder {path} has no config.json.")
        if not list(path.glob("*.safetensors")):
            raise StudioError(f"The model folder {path} has no safetensors weights (pickle checkpoints are not loaded).")
        config = json.loads(config_file.read_text())
        if config.get("model_type") == "musicgen":
            return _load_musicgen(str(path), device)
        return _load_symbolic(path, config, device)
    if "/" in model and not model.startswith((".", "/", "~")):  # a hub id (only MusicGen is known there), from
        return _load_musicgen(str(hub_snapshot(model, "music model")), device)  # the cache: studio models pull
    raise StudioError(f"The music model '{model}' is neither a local folder nor a hub id.")


def _load_symbolic(path: Path, config: dict, device: str) -> MusicHandle:
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from .vocab import vocabulary

    if config.get("model_type") not in ("gpt2", "llama"):
        raise StudioError(f"The model in {path} is a '{config.get('model_type')}', not a symbolic music LM "
                          "(gpt2 or llama) or MusicGen.")
    if not (path / "tokenizer.json").exists():
        raise StudioError(f"The symbolic music model in {path} has no tokenizer.json.")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path))
    missing = [t for t in vocabulary() if t not in tokenizer.get_vocab()]
    if missing:
        raise StudioError(f"The tokenizer in {path} lacks the music event '{missing[0]}'; it is not a studio music model.")
    lm = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False)
    lm.to(device).eval()
    meta_file = path / "studio_music.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    return MusicHandle("symbolic", lm, tokenizer, device, str(path), max_bars=int(meta.get("max_bars", DEFAULT_MAX_BARS)))


def _load_musicgen(source: str, device: str) -> MusicHandle:
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    try:
        lm = MusicgenForConditionalGeneration.from_pretrained(source, use_safetensors=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise load_error("MusicGen model", source, exc) from None
    lm.to(device).eval()
    frame_rate = float(lm.config.audio_encoder.frame_rate)
    # the decoder's positions bound the length; keep a few frames for the codebook delay pattern
    positions = int(lm.config.decoder.max_position_embeddings) - int(lm.config.decoder.num_codebooks) - 1
    return MusicHandle("musicgen", lm, tokenizer, device, source, max_seconds=positions / frame_rate)
