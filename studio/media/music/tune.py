"""LoRA tune tasks the shared trainer drives: the event LM on MIDI, MusicGen's decoder on clips.

Both tokenise once when built (MIDI to event ids; WAV to codes through the model's own
audio encoder), start from a copy of the base with no adapter in it (or from the parent
adapter's weights), and save a standard peft adapter folder.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...adapters import PeftTask, peft_lora, pristine_copy
from ...errors import StudioError
from ...medium import Candidate
from ...preference import PreferenceBatches, sequence_log_probs, tune_beta
from ...training import batch_rows
from .model import MusicHandle
from .settings import MusicTune
from .vocab import transposed

# the loss covers every token after <bos>: the tags the prompt leaves open (meter, tempo...) are
# part of what the artist kept, so the tune learns them too; forced tags cost nothing to learn
TAG_PREFIX = 1

TARGETS = {"gpt2": ["c_attn", "c_proj", "c_fc"],
           "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
           "musicgen": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]}  # decoder-only names


def _lora(model, kind: str, settings: dict[str, Any], parent_adapter: str | None):
    return peft_lora(model, TARGETS[kind], settings, parent_adapter, MusicTune.alpha_per_rank,
                     fan_in_fan_out=kind == "gpt2")


def _file_of(candidate: Candidate, ext: str) -> str:
    path = candidate.files.get(ext) or (candidate.path if candidate.path.endswith("." + ext) else None)
    if not path:
        raise StudioError(f"Candidate {candidate.id} has no .{ext} file to learn from.")
    return path


class SymbolicTuneTask(PeftTask):
    """Causal-LM loss on the music tokens of the curated MIDI files, tags as context."""

    def __init__(self, handle: MusicHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None, prior: Sequence[Candidate] = (), dropped: Sequence[Candidate] = ()):
        import torch

        from .events import read_midi

        if not examples:
            raise StudioError("There are no kept music pieces to tune on.")
        vocab = handle.tokenizer.get_vocab()
        # prior preservation: un-kept base melodies after the kept ones, this share of every batch
        self.prior_weight = float(settings["prior_weight"]) if prior else 0.0
        objective = settings["objective"] if dropped else "sft"  # no drops: the kept set alone (engine's note)
        others = list(dropped) if objective != "sft" else list(prior) if self.prior_weight > 0 else []
        shifts = [0] + [s for k in range(1, int(settings.get("transpose", 0)) + 1) for s in (k, -k)]
        kept_rows, other_rows, prompts = [], [], []
        for index, candidate in enumerate([*examples, *others]):
            piece = read_midi(_file_of(candidate, "mid"), name=f"The MIDI file of {candidate.id}")
            piece.bars = piece.bars[:handle.max_bars]
            tokens = piece.tokens()
            # the piece in each key the setting allows that keeps every voice in range (itself first)
            moved = [t for t in (transposed(tokens, s) for s in shifts) if t is not None]
            (kept_rows if index < len(examples) else other_rows).extend([vocab[t] for t in m] for m in moved)
            prompts += [candidate.prompt] * len(moved)
        rows = kept_rows + other_rows
        self.kept_rows = len(kept_rows)
        pad = vocab["<pad>"]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        labels = ids.masked_fill(ids == pad, -100)
        labels[:, :TAG_PREFIX] = -100
        self.device = handle.device
        self.ids, self.mask, self.labels = ids.to(self.device), (ids != pad).long().to(self.device), labels.to(self.device)
        self.batch_size = int(settings["batch_size"])
        kind = handle.model.config.model_type
        self.peft = _lora(pristine_copy(handle).to(self.device), kind, settings, parent_adapter)
        self.peft.train()
        self.preference = None
        if objective != "sft":  # the dropped pieces after the kept ones; their log-probs at the start, once
            self.peft.eval()  # no dropout: the tune's and the reference's log-probs must agree at the start
            self.preference = PreferenceBatches(objective, self.kept_rows, len(rows), self.batch_size,
                                                tune_beta(settings, parent_adapter), prompts,
                                                kept_floor=float(settings.get("kept_floor", 0.0)))
            self.reward_log = self.preference.reward_log  # each step's rewards, for its log
            with torch.no_grad():
                self.preference.reference = torch.cat([
                    self.sequence_log_probs(torch.arange(start, min(start + self.batch_size, len(rows))))
                    for start in range(0, len(rows), self.batch_size)]).cpu()

    def sequence_log_probs(self, rows: Any) -> Any:
        """Per row, the tune's summed log-prob of the piece's tokens (a preference objective's log pi)."""
        rows = rows.to(self.device)
        logits = self.peft(input_ids=self.ids[rows], attention_mask=self.mask[rows]).logits
        return sequence_log_probs(logits, self.labels[rows])

    def loss(self, step: int, generator: Any) -> Any:
        if self.preference is not None:
            return self.preference.loss(step, generator, self.sequence_log_probs)
        size = min(self.batch_size, len(self.ids))
        pick = batch_rows(self.kept_rows, len(self.ids), size, self.prior_weight, generator).to(self.device)
        return self.peft(input_ids=self.ids[pick], attention_mask=self.mask[pick], labels=self.labels[pick]).loss


class MusicgenTuneTask(PeftTask):
    """MusicGen's decoder loss on the clips' codes (delay pattern applied), conditioned on the prompts."""

    note: str | None = None  # one sentence the tune's result carries (the dropped clips it could not use)

    def __init__(self, handle: MusicHandle, examples: Sequence[Candidate], settings: dict[str, Any],
                 parent_adapter: str | None):
        from .musicgen import delayed_labels, encode_clips, read_clip

        if not examples:
            raise StudioError("There are no kept music clips to tune on.")
        clips = [read_clip(_file_of(c, "wav"), handle.sampling_rate) for c in examples]
        max_frames = int(handle.max_seconds * handle.frame_rate)
        codes = [c[:, :max_frames] for c in encode_clips(handle.model, clips, handle.device)]
        pad = int(handle.model.config.decoder.pad_token_id)
        self.labels = [delayed_labels(c, pad) for c in codes]
        text = handle.tokenizer([c.prompt for c in examples], return_tensors="pt", padding=True)
        self.text_ids, self.text_mask = text["input_ids"], text["attention_mask"]
        self.device = handle.device
        self.batch_size = int(settings["batch_size"])
        self.peft = _lora(pristine_copy(handle).to(self.device), "musicgen", settings, parent_adapter)
        self.peft.train()

    def loss(self, step: int, generator: Any) -> Any:
        import torch

        pick = self.pick(len(self.labels), generator)
        width = max(len(self.labels[i]) for i in pick)
        labels = torch.full((len(pick), width, self.labels[0].shape[1]), -100, dtype=torch.long)
        for row, i in enumerate(pick):
            labels[row, :len(self.labels[i])] = self.labels[i]
        return self.peft(input_ids=self.text_ids[pick].to(self.device), attention_mask=self.text_mask[pick].to(self.device),
                         labels=labels.to(self.device)).loss


def build_task(handle: MusicHandle, examples, settings, parent_adapter, prior=(), dropped=()):
    if handle.kind == "symbolic":
        return SymbolicTuneTask(handle, examples, settings, parent_adapter, prior, dropped)
    task = MusicgenTuneTask(handle, examples, settings, parent_adapter)  # prior: symbolic only for now
    if dropped:  # the preference objectives score whole token sequences; MusicGen's delayed codebooks are not yet
        task.note = (f"MusicGen tunes with sft: the {settings['objective']} objective is for symbolic models, so "
                     f"the {len(dropped)} dropped clips were not used.")
    return task
