"""LoRA tune tasks the shared trainer drives, on the kept takes.

Built-in voice: each kept take brings its alignment (the JSON beside its WAV: frames and pitch
per phoneme as the seed read them, and the seed's draws) and its mel; the loss is the recipe's own
(mel L1 + duration and pitch MSE).  The decoder is fed the reading as it was made; the duration and
pitch predictors learn it with what every reading draws again divided out (``reading_targets``): the
settings' and style's centre and the per-phoneme pitch jitter.  What is left is the line's own pace,
pitch level and range as the seed drew them around that centre, and which phonemes it lengthened, the
part the keep rule chose and the part that carries to new lines: a tune moves the centre of the readings
toward the kept ones, and generation draws the seed's variation around the new centre.  The LoRA sits on
the two predictors only (``TINY_TARGETS``): the kept mel is the network's own, so the encoder and decoder have
nothing to learn from it (the mel term stays in the loss, constant), and a new line sounds as before but
read as the kept lines were.
SpeechT5: its spectrogram loss on the kept WAVs (16 kHz log mel targets), conditioned on the line
and the model's first speaker embedding.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ...adapters import PeftTask, peft_lora, pristine_copy
from ...errors import StudioError
from ...medium import Candidate
from .lines import training_lines
from .model import VoiceHandle
from .settings import VoiceTune

TINY_TARGETS = ["conv1", "conv2", "head"]  # the duration and pitch predictors (see TinyTuneTask)
SPEECHT5_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "intermediate_dense", "output_dense"]


def _lora(model, targets: list[str], settings: dict[str, Any], parent_adapter: str | None):
    return peft_lora(model, targets, settings, parent_adapter, VoiceTune.alpha_per_rank)


def _file(candidate: Candidate, ext: str) -> Path:
    path = candidate.files.get(ext) or (candidate.path if candidate.path.endswith("." + ext) else None)
    if not path or not Path(path).exists():
        raise StudioError(f"Candidate {candidate.id} has no .{ext} file to learn from.")
    return Path(path)


class TinyTuneTask(PeftTask):
    def __init__(self, handle: VoiceHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None, dropped: Sequence[Candidate] = ()):
        import torch

        from ...preference import PreferenceBatches, tune_beta

        if not examples:
            raise StudioError("There are no kept voice takes to tune on.")
        objective = settings.get("objective", "sft") if dropped else "sft"
        takes = [*examples, *(dropped if objective != "sft" else ())]
        config = handle.model.config
        self.rows = [_take_row(config, c, bool(settings.get("intonation_as_read"))) for c in takes]
        prompts = [c.prompt for c in takes]
        self.batch_size = int(settings["batch_size"])
        self.peft = _lora(pristine_copy(handle), TINY_TARGETS, settings, parent_adapter)
        kept = len(examples)
        lines = int(settings.get("other_lines") or 0)
        if lines and objective != "sft":  # each take's line-wide reading on other lines too, kept rows first
            carried = _carried_rows(self.peft, config, takes, training_lines(lines))
            kept_carried = [(row, line) for row, take, line in carried if take < kept]
            dropped_carried = [(row, line) for row, take, line in carried if take >= kept]
            self.rows = [*self.rows[:kept], *(r for r, _ in kept_carried), *self.rows[kept:],
                         *(r for r, _ in dropped_carried)]
            prompts = [*prompts[:kept], *(line for _, line in kept_carried), *prompts[kept:],
                       *(line for _, line in dropped_carried)]
            kept += len(kept_carried)
        self.preference = None
        if objective != "sft":  # the dropped takes after the kept ones (preference.py); no dropout: rewards compare
            self.preference = PreferenceBatches(objective, kept, len(self.rows), self.batch_size,
                                                tune_beta(settings, parent_adapter), prompts)
            self.reward_log = self.preference.reward_log  # each step's rewards, for its log
            self.peft.eval()
            with torch.no_grad():  # the starting model's (base or parent) reading of every take, before any step
                self.preference.reference = self.log_probs(torch.arange(len(self.rows)))
        else:
            self.peft.train()

    def loss(self, step: int, generator: Any) -> Any:
        from .defaults import losses

        if self.preference is not None:
            return self.preference.loss(step, generator, self.log_probs)
        ids, lengths, durations, pitch, mel, duration_target, pitch_target, pitch_known = _batch(
            [self.rows[i] for i in self.pick(len(self.rows), generator)])
        return losses(self.peft, ids, lengths, durations, pitch, mel, duration_target, pitch_target, pitch_known)[0]

    def log_probs(self, rows: Any) -> Any:
        """Per take, the tune's log-likelihood of its reading, up to a constant: minus the recipe's weighted
        duration and pitch errors against ``reading_targets``, averaged over the take's phonemes.  A reading
        is the predictors' output plus Gaussian draws (``reading.py``), so this is log pi of a take (in units
        where the draws' variance is fixed) and kto's reward, log pi - log pi_ref, is the starting model's
        reading error minus the tune's: the Diffusion-KTO reward with the reading in place of the noise."""
        from .defaults import DURATION_WEIGHT, PITCH_WEIGHT

        batch = _batch([self.rows[i] for i in rows.tolist()])
        ids, lengths, _, _, _, duration_target, pitch_target, pitch_known = batch
        x, mask = self.peft.encode(ids, lengths)
        log_durations, pitch = self.peft.predict(x, mask)
        mask = mask.squeeze(-1)
        error = (DURATION_WEIGHT * (log_durations - duration_target) ** 2
                 + PITCH_WEIGHT * pitch_known[:, None] * (pitch - pitch_target) ** 2)
        return -(error * mask).sum(dim=1) / mask.sum(dim=1)


def _carried_rows(net, config, takes: Sequence[Candidate], lines: Sequence[str]) -> list[tuple[tuple, int, str]]:
    """Each take's line-wide reading carried to ``lines``: per (take, line) whose take has its draws, (the row
    ``_batch`` reads, the take's index, the line).  The line is read as the starting model (``net`` before any
    step) predicts it, moved by the take's own pace, shift and range with no per-phoneme noise, and learned as
    ``reading_targets`` learns the take itself.  The row has no frames of sound: it serves the preference
    objectives' log-probs (``TinyTuneTask.log_probs``), never the mel loss."""
    import numpy as np
    import torch

    from .phonemes import text_to_ids
    from .speak import SEMITONE

    predicted = []
    net.eval()
    with torch.no_grad():
        for line in lines:
            ids = text_to_ids(line)
            x, mask = net.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
            log_durations, pitch = net.predict(x, mask)
            predicted.append((np.asarray(ids), np.clip(np.expm1(log_durations[0].double().numpy()), 0, None),
                              pitch[0].double().numpy()))
    rows = []
    for index, c in enumerate(takes):
        draws = json.loads(_file(c, "json").read_text()).get("draws")
        if not draws:  # an older take: its reading's draws are unknown
            continue
        for line, (ids, frames, pitch) in zip(lines, predicted):
            read = pitch * float(draws["range"]) + float(draws["shift"]) * SEMITONE / config.pitch_std
            quiet = {**draws, "rhythm": [0.0] * len(ids), "intonation": [0.0] * len(ids)}
            targets = reading_targets(frames * float(draws["pace"]), read, quiet, config)
            rows.append(((ids, np.zeros(len(ids), dtype=np.int64), np.zeros((0, config.n_mels), np.float32),
                          read.astype(np.float32), *targets), index, line))
    return rows


def _take_row(config, c: Candidate, intonation_as_read: bool = False) -> tuple:
    """One take as the tune reads it: (ids, frames per id, its mel, its pitch, the duration and pitch targets,
    whether the pitch target is known)."""
    import numpy as np

    from .audio import log_mel, read_wav

    try:
        alignment = json.loads(_file(c, "json").read_text())
        ids, durations, hz = alignment["ids"], alignment["durations"], alignment["pitch_hz"]
    except (ValueError, KeyError):
        raise StudioError(f"The alignment file of take {c.id} is not one the built-in voice wrote.") from None
    audio, rate = read_wav(_file(c, "wav"))
    if rate != 22050:
        raise StudioError(f"Take {c.id} is at {rate} Hz; the built-in voice learns from 22050 Hz takes.")
    frames = int(sum(durations))
    # the network's own spectrogram of the take when it kept one (RSFT on the model's own output);
    # else the WAV's, re-analysed (it carries the vocoder's smearing)
    own = c.files.get("npy")
    mel = (np.load(own, allow_pickle=False).astype(np.float32) if own and Path(own).is_file()
           else log_mel(audio).numpy())[:frames]
    if len(mel) < frames:
        mel = np.pad(mel, ((0, frames - len(mel)), (0, 0)), mode="edge")
    pitch = (np.log(np.asarray(hz, dtype=np.float64)) - config.pitch_mean) / config.pitch_std
    targets = reading_targets(np.asarray(durations), pitch, alignment.get("draws"), config, intonation_as_read)
    return (np.asarray(ids), np.asarray(durations), mel.astype(np.float32), pitch.astype(np.float32), *targets)


def _batch(rows: Sequence[tuple]) -> tuple:
    """Rows of ``_take_row`` padded into tensors: (ids, lengths, durations, pitch, mel, duration target, pitch
    target, pitch known)."""
    import torch

    width = max(len(r[0]) for r in rows)
    total = max(int(r[1].sum()) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    durations = torch.zeros(len(rows), width, dtype=torch.long)
    pitch = torch.zeros(len(rows), width)
    mel = torch.zeros(len(rows), total, rows[0][2].shape[1])
    duration_target, pitch_target = torch.zeros(len(rows), width), torch.zeros(len(rows), width)
    for row, (i, d, m, p, dt, pt, _) in enumerate(rows):
        ids[row, :len(i)] = torch.from_numpy(i)
        durations[row, :len(d)] = torch.from_numpy(d)
        pitch[row, :len(p)] = torch.from_numpy(p)
        mel[row, :len(m)] = torch.from_numpy(m)
        duration_target[row, :len(dt)] = torch.from_numpy(dt)
        pitch_target[row, :len(pt)] = torch.from_numpy(pt)
    lengths = torch.tensor([len(r[0]) for r in rows])
    pitch_known = torch.tensor([r[6] for r in rows], dtype=torch.float32)
    return ids, lengths, durations, pitch, mel, duration_target, pitch_target, pitch_known


def reading_targets(durations, pitch, draws: dict | None, config,
                    intonation_as_read: bool = False) -> tuple[Any, Any, float]:
    """What the duration and pitch predictors learn from one take: (log(frames + 1) per id, normalised pitch
    per id, 1.0 or 0.0 when the pitch target is unknown).

    Generation reads ``frames = predicted * pace * exp(rhythm)`` and ``pitch = predicted * range +
    intonation + shift`` (``speak.py``), with pace, shift and range drawn around the settings' centre.
    Dividing the centre and the per-id pitch noise out leaves what the network should predict for the take to
    come back at the centre: the base's prediction moved by the line's own draw of pace, shift and range.
    The per-id rhythm stays in the duration target: which consonants and pauses a reading lengthened is
    what made it intelligible (docs/voice.md, "The rhythm as read"), and the predictor, reading each
    phoneme in its context, carries that to new lines (the rhythm divided out lifted intelligibility in
    2 of 3 seeds, learned as read in 3 of 3).
    ``intonation_as_read`` keeps the per-id pitch noise in the pitch target as the rhythm is kept in the
    duration target: which words a reading raised or lowered (a falling end, a lifted word) is then learned too,
    where otherwise only the line's pitch level and range are.
    A take without draws (an older one) is learned as read; with a monotone centre (range 0) its pitch
    says nothing about the predictor, so it is left out of the pitch loss."""
    import numpy as np

    from .speak import SEMITONE

    durations = np.asarray(durations, dtype=np.float64)
    pitch = np.asarray(pitch, dtype=np.float64)
    if not draws:
        return np.log1p(durations).astype(np.float32), pitch.astype(np.float32), 1.0
    try:
        centre = draws["centre"]
        rhythm = np.asarray(draws["rhythm"], dtype=np.float64)
        intonation = np.asarray(draws["intonation"], dtype=np.float64)
        pace, shift, spread = float(centre["pace"]), float(centre["shift"]), float(centre["range"])
    except (KeyError, TypeError, ValueError):
        raise StudioError("A take's alignment has draws the built-in voice did not write.") from None
    if len(rhythm) != len(durations) or len(intonation) != len(pitch) or pace <= 0:
        raise StudioError("A take's alignment has draws that do not match its phonemes.")
    frames = durations / pace  # the rhythm stays: which phonemes a reading lengthens carries to new lines
    known = spread > 1e-6
    divided_out = 0.0 if intonation_as_read else intonation  # the per-id pitch noise, unless it is learned
    target = (pitch - divided_out - shift * SEMITONE / config.pitch_std) / spread if known else pitch
    return np.log1p(frames).astype(np.float32), target.astype(np.float32), float(known)


class SpeechT5TuneTask(PeftTask):
    def __init__(self, handle: VoiceHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None):
        from .features import line_of
        from .recognise import _resample
        from .audio import read_wav

        if not examples:
            raise StudioError("There are no kept voice takes to tune on.")
        reduction = int(handle.model.config.reduction_factor)
        rate = int(handle.processor.feature_extractor.sampling_rate)
        self.rows = []
        for c in examples:
            audio, sr = read_wav(_file(c, "wav"))
            features = handle.processor(text=line_of(c), audio_target=_resample(audio, sr, rate), sampling_rate=rate,
                                        return_tensors="pt")
            labels = features["labels"][0]
            labels = labels[:len(labels) // reduction * reduction]
            if len(labels) < reduction:
                raise StudioError(f"Take {c.id} is too short to learn from.")
            self.rows.append((features["input_ids"][0], labels))
        self.speaker = handle.speakers[0]
        self.batch_size = int(settings["batch_size"])
        self.peft = _lora(pristine_copy(handle), SPEECHT5_TARGETS, settings, parent_adapter)
        self.peft.train()

    def loss(self, step: int, generator: Any) -> Any:
        import torch

        rows = [self.rows[i] for i in self.pick(len(self.rows), generator)]
        width = max(len(r[0]) for r in rows)
        frames = max(len(r[1]) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), frames, rows[0][1].shape[1]), -100.0)
        for row, (i, l) in enumerate(rows):
            ids[row, :len(i)] = i
            mask[row, :len(i)] = 1
            labels[row, :len(l)] = l
        speakers = self.speaker[None].expand(len(rows), -1)
        return self.peft(input_ids=ids, attention_mask=mask, speaker_embeddings=speakers, labels=labels).loss


def build_task(handle: VoiceHandle, examples, settings, parent_adapter, prior=(), dropped=()):
    """The tune for the handle's kind; ``prior`` is always empty (the voice settings refuse prior_weight);
    ``dropped`` comes only with the kto and dpo objectives, which only the built-in voice has."""
    if handle.kind == "tiny":
        return TinyTuneTask(handle, examples, settings, parent_adapter, dropped)
    if dropped and settings.get("objective", "sft") != "sft":
        raise StudioError(f"The {settings['objective']} objective is the built-in voice's; "
                          f"{'CSM' if handle.kind == 'csm' else 'SpeechT5'} tunes with objective sft.")
    if handle.kind == "csm":
        from .codec_lm import CsmTuneTask

        return CsmTuneTask(handle, examples, settings, parent_adapter)
    return SpeechT5TuneTask(handle, examples, settings, parent_adapter)
