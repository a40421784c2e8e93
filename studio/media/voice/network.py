"""The built-in voice's network: a small FastSpeech-style text-to-mel model (Ren et al. 2019/2020).

phoneme ids -> encoder (convolutions) -> a duration and a pitch per id -> each id's vector
repeated for its frames -> decoder (convolutions) -> 80-band log mel -> the vocoder (audio.py).
Durations and pitch are predicted, so a seed can move them (pace, intonation, emphasis) before
the decoder draws the sound: that is where one reading differs from the next.
A plain ``torch.nn.Module`` of Conv1d and Linear layers: peft's LoRA wraps it by module name.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn


@dataclasses.dataclass
class VoiceConfig:
    n_symbols: int = 121  # phonemes.SYMBOLS
    width: int = 128  # channels everywhere
    encoder_layers: int = 3
    decoder_layers: int = 5
    kernel: int = 5
    predictor_width: int = 96
    n_mels: int = 80
    dropout: float = 0.1
    pitch_mean: float = 4.6  # log Hz of the training voice (normalises the pitch targets)
    pitch_std: float = 0.2
    model_type: str = "studio_voice"

    def to_dict(self) -> dict:  # peft reads a model's config as a dict
        return dataclasses.asdict(self)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def save(self, folder: Path) -> None:
        (Path(folder) / "config.json").write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "VoiceConfig":
        data = json.loads((Path(folder) / "config.json").read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ConvBlock(nn.Module):
    def __init__(self, width: int, kernel: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):  # x (B, T, C), mask (B, T, 1)
        y = self.conv((x * mask).transpose(1, 2)).transpose(1, 2)
        return self.norm(x + self.drop(torch.relu(y))) * mask


class Predictor(nn.Module):
    """Two convolutions and a linear head: one number per id (a log duration or a pitch)."""

    def __init__(self, width: int, hidden: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv1d(width, hidden, 3, padding=1)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, mask):
        y = self.drop(self.norm1(torch.relu(self.conv1((x * mask).transpose(1, 2)).transpose(1, 2))))
        y = self.drop(self.norm2(torch.relu(self.conv2((y * mask).transpose(1, 2)).transpose(1, 2))))
        return self.head(y).squeeze(-1) * mask.squeeze(-1)


class TinyVoice(nn.Module):
    def __init__(self, config: VoiceConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.n_symbols, c.width)
        self.encoder = nn.ModuleList(ConvBlock(c.width, c.kernel, c.dropout) for _ in range(c.encoder_layers))
        self.duration = Predictor(c.width, c.predictor_width, c.dropout)
        self.pitch = Predictor(c.width, c.predictor_width, c.dropout)
        self.pitch_embed = nn.Conv1d(1, c.width, 3, padding=1)
        self.position = nn.Linear(2, c.width)  # where a frame sits inside its phoneme
        self.decoder = nn.ModuleList(ConvBlock(c.width, c.kernel, c.dropout) for _ in range(c.decoder_layers))
        self.to_mel = nn.Linear(c.width, c.n_mels)

    def encode(self, ids, lengths):
        mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None]).unsqueeze(-1).float()
        x = self.embed(ids) * mask
        for block in self.encoder:
            x = block(x, mask)
        return x, mask

    def predict(self, x, mask):
        """Log(frames + 1) and normalised log pitch, per id."""
        return self.duration(x, mask), self.pitch(x, mask)

    def decode(self, x, mask, durations, pitch):
        """Frames from per-id vectors: (B, T) integer durations, (B, T) normalised pitch."""
        x = x + self.pitch_embed((pitch * mask.squeeze(-1)).unsqueeze(1)).transpose(1, 2)
        frames = durations.sum(dim=1)
        total = int(frames.max().item()) if len(frames) else 0
        index, inside = _expand(durations, total)
        frame_mask = (torch.arange(total, device=x.device)[None] < frames[:, None]).unsqueeze(-1).float()
        h = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        h = (h + self.position(torch.stack([inside, 1 - inside], dim=-1))) * frame_mask
        for block in self.decoder:
            h = block(h, frame_mask)
        return self.to_mel(h) * frame_mask, frame_mask

    def forward(self, ids, lengths, durations, pitch):
        """Teacher-forced pass for training: (predicted log durations, predicted pitch, mel, frame mask)."""
        x, mask = self.encode(ids, lengths)
        log_durations, predicted_pitch = self.predict(x, mask)
        mel, frame_mask = self.decode(x, mask, durations, pitch)
        return log_durations, predicted_pitch, mel, frame_mask


def _expand(durations, total: int):
    """For each output frame, the id it belongs to and how far through that id it is (0..1)."""
    batch, ids = durations.shape
    ends = torch.cumsum(durations, dim=1).contiguous()
    frames = torch.arange(total, device=durations.device)[None, :].expand(batch, -1).contiguous()
    index = torch.searchsorted(ends, frames, right=True).clamp(max=ids - 1)
    starts = ends - durations
    start = torch.gather(starts, 1, index)
    length = torch.gather(durations, 1, index).clamp(min=1)
    inside = (frames - start).float() / length.float()
    return index, inside
