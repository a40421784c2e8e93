"""A tiny built-in-style voice built from a config (random weights, no downloads), saved as a folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # voice_helpers
    sys.path.insert(0, str(HERE))


def build_tiny_voice(folder: Path, width: int = 16) -> Path:
    import torch
    from safetensors.torch import save_file

    from studio.media.voice.network import TinyVoice, VoiceConfig
    from studio.media.voice.phonemes import SYMBOLS

    torch.manual_seed(0)
    config = VoiceConfig(n_symbols=len(SYMBOLS), width=width, encoder_layers=1, decoder_layers=1,
                         predictor_width=8, dropout=0.0)
    net = TinyVoice(config)
    with torch.no_grad():  # about 5 frames per phoneme, like real speech, rather than random lengths
        net.duration.head.bias.fill_(1.8)
        net.duration.head.weight.mul_(0.1)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    config.save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_voice(tmp_path_factory) -> Path:
    return build_tiny_voice(tmp_path_factory.mktemp("tiny-voice"))
