"""Loading a voice: the built-in TinyVoice (``assets/``) or SpeechT5 from a local folder.

The folder's ``config.json`` picks the path: ``model_type`` ``studio_voice`` is the built-in
network, ``speecht5`` is transformers' SpeechT5ForTextToSpeech, which needs its HiFi-GAN
vocoder in ``vocoder/`` (or ``hifigan/``) and a speaker embedding (``speaker.safetensors``,
key ``speaker``, shape (512,) or (n, 512): one per reading voice); ``csm`` is Sesame CSM
(``codec_lm.py``).  Weights only from
safetensors, never remote code.  Adapters are loaded once into one PeftModel and switched by name.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ...errors import StudioError


@dataclasses.dataclass
class VoiceHandle:
    kind: str  # "tiny", "speecht5" or "csm"
    model: Any  # TinyVoice, SpeechT5ForTextToSpeech or CsmForConditionalGeneration (adapters switch on top)
    device: str
    source: str
    sample_rate: int = 22050
    processor: Any = None  # speecht5: SpeechT5Processor (its tokenizer); csm: CsmProcessor
    vocoder: Any = None  # speecht5: SpeechT5HifiGan
    speakers: Any = None  # speecht5: (n, 512) speaker embeddings
    peft: Any = None  # the PeftModel around ``model`` once an adapter was asked for
    adapters: dict[str, str] = dataclasses.field(default_factory=dict)  # adapter folder -> peft name

    @property
    def net(self) -> Any:
        """The model to run: the PeftModel when adapters are loaded (with the active one on)."""
        return self.peft if self.peft is not None else self.model


def load(model: str, device: str | None = None) -> VoiceHandle:
    path = Path(model).expanduser()
    if not path.exists():
        raise StudioError(f"The voice model '{model}' is not a local folder (voices load from folders only).")
    if not path.is_dir():
        raise StudioError(f"The voice model {path} is a file; give the folder that holds it.")
    config_file = path / "config.json"
    if not config_file.exists():
        raise StudioError(f"The voice model folder {path} has no config.json.")
    if not list(path.glob("*.safetensors")):
        raise StudioError(f"The voice model folder {path} has no safetensors weights (pickle checkpoints are not loaded).")
    try:
        config = json.loads(config_file.read_text())
    except ValueError:
        raise StudioError(f"The config.json in {path} is not valid JSON.") from None
    kind = config.get("model_type")
    device = device or "cpu"
    if kind == "studio_voice":
        return _load_tiny(path, device)
    if kind == "speecht5":
        return _load_speecht5(path, device)
    if kind == "csm":
        from .codec_lm import load_csm

        return load_csm(path, device)
    raise StudioError(f"The model in {path} is a '{kind}'; voice loads the built-in voice (studio_voice), "
                      "SpeechT5 or CSM.")


def _load_tiny(path: Path, device: str) -> VoiceHandle:
    from safetensors.torch import load_file

    from .network import TinyVoice, VoiceConfig
    from .phonemes import espeak_available

    if not espeak_available():
        raise StudioError("The built-in voice needs the espeak-ng program to read text (apt-get install espeak-ng).")
    net = TinyVoice(VoiceConfig.load(path))
    try:
        net.load_state_dict(load_file(str(path / "model.safetensors")))
    except (RuntimeError, FileNotFoundError) as exc:
        raise StudioError(f"The weights in {path} do not fit its config.json ({str(exc).splitlines()[0][:100]}).") from None
    net.to(device).eval()
    return VoiceHandle("tiny", net, device, str(path))


def _load_speecht5(path: Path, device: str) -> VoiceHandle:
    from safetensors.torch import load_file
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor

    vocoder_dir = next((path / name for name in ("vocoder", "hifigan") if (path / name / "config.json").exists()), None)
    if vocoder_dir is None:
        raise StudioError(f"The SpeechT5 folder {path} has no vocoder/ folder with a SpeechT5HifiGan.")
    if not (path / "speaker.safetensors").exists():
        raise StudioError(f"The SpeechT5 folder {path} has no speaker.safetensors (a 512-number speaker embedding).")
    try:
        model = SpeechT5ForTextToSpeech.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False)
        vocoder = SpeechT5HifiGan.from_pretrained(str(vocoder_dir), use_safetensors=True, trust_remote_code=False)
        processor = SpeechT5Processor.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise StudioError(f"SpeechT5 could not be loaded from {path} ({str(exc).splitlines()[0][:120]}).") from None
    speakers = load_file(str(path / "speaker.safetensors")).get("speaker")
    if speakers is None or speakers.shape[-1] != model.config.speaker_embedding_dim:
        raise StudioError(f"speaker.safetensors in {path} needs a 'speaker' tensor of "
                          f"{model.config.speaker_embedding_dim} numbers per speaker.")
    model.to(device).eval()
    vocoder.to(device).eval()
    return VoiceHandle("speecht5", model, device, str(path), sample_rate=int(vocoder.config.sampling_rate),
                       processor=processor, vocoder=vocoder, speakers=speakers.reshape(-1, speakers.shape[-1]))
