"""Sesame CSM: a causal language model that speaks in Mimi codec tokens, loaded from a local folder.

CSM (transformers' ``CsmForConditionalGeneration``) is a Llama backbone that reads the line as text
and then writes one audio frame per step: it predicts the frame's first codebook, and a small depth
decoder the other codebooks; the Mimi codec inside the checkpoint (``codec_model``) turns the frames
into 24 kHz sound.  The prompt is the processor's conversation format: ``[speaker]line`` between the
text tokens, then audio frames, then ``<|audio_eos|>``.

A take keeps the frames it was made from (``ID.codes.npy``, frames x codebooks, int16): a tune learns
exactly those tokens (RSFT on the model's own output), with a LoRA on the backbone's attention and MLP
projections only; a take without them (an imported WAV) is encoded again with the Mimi encoder.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...adapters import PeftTask, pristine_copy
from ...errors import StudioError
from ...medium import Candidate, Generated

SPEAKERS = 2  # csm-1b learned two-party conversations: a seed reads as speaker [0] or [1]
CODES_EXT = "codes.npy"  # the take's codec frames beside its WAV
# the LoRA goes on the Llama backbone's projections, not on the depth decoder's or Mimi's (same names)
BACKBONE_TARGETS = r"backbone_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def load_csm(path: Path, device: str):
    """A VoiceHandle for the CSM folder ``path`` (config.json, safetensors, tokenizer, processor config)."""
    try:
        from transformers import CsmForConditionalGeneration, CsmProcessor
    except ImportError:
        raise StudioError("CSM needs transformers 4.52 or newer (pip install -U transformers).") from None

    from .model import VoiceHandle

    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise StudioError(f"The CSM folder {path} has no tokenizer (tokenizer.json or tokenizer_config.json).")
    if not any((path / name).exists() for name in PROCESSOR_FILES):
        raise StudioError(f"The CSM folder {path} has no processor config (processor_config.json or "
                          "preprocessor_config.json).")
    try:
        model, info = CsmForConditionalGeneration.from_pretrained(
            str(path), use_safetensors=True, trust_remote_code=False, output_loading_info=True)
        processor = CsmProcessor.from_pretrained(str(path))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        text = str(exc)
        if "mismatched_sizes" in text or "size mismatch" in text:
            raise StudioError(f"The weights in {path} do not fit its config.json (tensor shapes differ).") from None
        first = (text.splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        raise StudioError(f"CSM could not be loaded from {path} ({first[:120]}).") from None
    missing = [k for k in (*info.get("missing_keys", ()), *info.get("mismatched_keys", ()))]
    if missing:  # transformers would start those weights at random: refuse instead of speaking noise
        first = missing[0] if isinstance(missing[0], str) else missing[0][0]
        raise StudioError(f"The weights in {path} do not fit its config.json ({len(missing)} missing or "
                          f"mis-shaped, e.g. {first}).")
    if processor.chat_template is None:
        raise StudioError(f"The CSM folder {path} has no chat template (chat_template.jinja) to lay out a prompt.")
    if processor.audio_token_id != model.config.audio_token_id or \
            processor.audio_eos_token_id != model.config.audio_eos_token_id:
        raise StudioError(f"The tokenizer in {path} does not match its config.json's audio tokens.")
    model.to(device).eval()
    rate = int(model.config.codec_config.sampling_rate)
    return VoiceHandle("csm", model, device, str(path), sample_rate=rate, processor=processor)


def _frame_rate(model) -> float:
    return float(model.config.codec_config.frame_rate)


def _prompt_text(processor, speaker: int, line: str, with_audio: bool) -> str:
    """The checkpoint's own conversation layout for one turn, rendered as text."""
    content = [{"type": "text", "text": line}] + ([{"type": "audio"}] if with_audio else [])
    return processor.apply_chat_template([{"role": str(speaker), "content": content}], tokenize=False)


def _speaker_and_sampling(seed: int, model, variation: float) -> tuple[int, dict[str, Any]]:
    """The seed's speaker and the sampling: the checkpoint's temperatures scaled by ``variation``
    (0: greedy, speaker 0, so every seed reads alike)."""
    import torch

    if variation <= 0:
        return 0, {"do_sample": False, "depth_decoder_do_sample": False}
    generator = torch.Generator().manual_seed(int(seed))
    speaker = int(torch.randint(SPEAKERS, (1,), generator=generator))
    backbone = float(model.generation_config.temperature or 1.0)
    depth = float(model.depth_decoder.generation_config.temperature or 1.0)
    return speaker, {"do_sample": True, "temperature": backbone * variation,
                     "depth_decoder_do_sample": True, "depth_decoder_temperature": depth * variation}


def _until_end(codes, eos: int):
    """The frames before the first end frame (every codebook but the last at ``eos``: what stops CSM)."""
    ended = (codes[:, :-1] == eos).all(dim=-1).nonzero()
    return codes[:int(ended[0])] if len(ended) else codes


def decode(model, codes) -> np.ndarray:
    """(frames, codebooks) codes -> float audio at the codec's rate."""
    import torch

    size = int(model.config.codec_config.codebook_size)
    if len(codes) and int(codes.max()) >= size:
        raise StudioError(f"CSM wrote a code ({int(codes.max())}) outside its codec's {size} codes; "
                          "its config.json and codec do not match.")
    if not len(codes):
        return np.zeros(0, dtype=np.float32)
    with torch.no_grad():
        audio = model.codec_model.decode(codes.transpose(0, 1)[None].to(model.device)).audio_values
    return audio.reshape(-1).float().cpu().numpy()


def generate_csm(handle, prompt: str, seeds: Sequence[int], params: dict) -> list[Generated]:
    """One take per seed, each made alone (so a take never depends on the seeds beside it)."""
    import torch

    from .audio import normalise
    from .generate import MAX_CHARACTERS, _files
    from .reading import split_style

    style, line = split_style(prompt)  # CSM has no pace or pitch control: the style is only recorded
    if len(line) > MAX_CHARACTERS:
        raise StudioError(f"A line to speak is at most {MAX_CHARACTERS} characters; split longer text into lines.")
    model = handle.model  # with the active adapter's LoRA layers in it (adapter_active)
    frames = max(1, int(float(params["max_seconds"]) * _frame_rate(model)))
    eos = int(model.config.codebook_eos_token_id)
    out = []
    for seed in seeds:
        speaker, sampling = _speaker_and_sampling(seed, model, float(params["variation"]))
        inputs = handle.processor(text=_prompt_text(handle.processor, speaker, line, False),
                                  add_special_tokens=False, return_tensors="pt").to(handle.device)
        # the seed's draws (on the CPU, or the GPU's generator) leave the global RNG as it was
        with torch.random.fork_rng(devices=[] if handle.device == "cpu" else None), torch.no_grad():
            torch.manual_seed(int(seed))
            made = handle.net.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                       max_new_tokens=frames, **sampling)
        codes = _until_end(made[0].cpu(), eos)
        audio = normalise(decode(model, codes))
        record = {"line": line, "style": list(style.words), "speaker": speaker, "frames": len(codes),
                  "frame_rate": _frame_rate(model), "sampling": sampling}
        files = _files(audio, handle.sample_rate, line, record)
        files[CODES_EXT] = codes_bytes(codes.numpy())
        out.append(Generated(seed, files))
    return out


def codes_bytes(codes: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, codes.astype(np.int16), allow_pickle=False)
    return buffer.getvalue()


def _take_codes(handle, candidate: Candidate, model) -> np.ndarray:
    """The frames the take was made from, else its WAV encoded again by the Mimi encoder."""
    import torch

    from .audio import read_wav
    from .features import wav_of
    from .recognise import _resample

    stored = candidate.files.get(CODES_EXT)
    books = int(model.config.num_codebooks)
    if stored and Path(stored).is_file():
        codes = np.load(stored, allow_pickle=False).astype(np.int64)
        if codes.ndim != 2 or codes.shape[1] != books:
            raise StudioError(f"The codes of take {candidate.id} are not {books}-codebook CSM frames.")
        return codes
    audio, rate = read_wav(wav_of(candidate))
    audio = _resample(audio, rate, handle.sample_rate).astype(np.float32)
    with torch.no_grad():
        encoded = model.codec_model.encode(torch.from_numpy(audio)[None, None].to(model.device),
                                           num_quantizers=books).audio_codes
    return encoded[0].transpose(0, 1).cpu().numpy().astype(np.int64)


class CsmTuneTask(PeftTask):
    """CSM's own training loss (backbone: first codebook; depth decoder: the rest) on the kept takes,
    each laid out as one conversation turn: ``[speaker]line``, its frames, the end frame."""

    def __init__(self, handle, examples: Sequence[Candidate], settings: dict[str, Any], parent_adapter: str | None):
        import torch

        from .features import line_of
        from .tune import _lora

        if not examples:
            raise StudioError("There are no kept voice takes to tune on.")
        model = handle.model
        processor = handle.processor
        self.rows = []
        for c in examples:
            codes = _take_codes(handle, c, model)
            if not len(codes):
                raise StudioError(f"Take {c.id} has no sound to learn from.")
            speaker = _take_speaker(c)
            text = _prompt_text(processor, speaker, line_of(c), True)
            # one audio placeholder per frame, as the processor expands it for a clip of this length
            text = text.replace(processor.audio_token, processor.audio_token * len(codes), 1)
            ids = processor.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
            if int((ids == processor.audio_token_id).sum()) != len(codes):
                raise StudioError("The CSM chat template does not place one audio turn after the line.")
            self.rows.append((ids, torch.from_numpy(codes)))
        self.config = model.config
        self.batch_size = int(settings["batch_size"])
        self.peft = _lora(pristine_copy(handle), BACKBONE_TARGETS, settings, parent_adapter)
        self.peft.train()
        self.peft.get_base_model().codec_model.eval()

    def loss(self, step: int, generator: Any) -> Any:
        import torch

        base = self.peft.get_base_model()
        config = self.config
        rows = [self.rows[i] for i in self.pick(len(self.rows), generator)]
        width = max(len(ids) for ids, _ in rows)
        device = next(base.parameters()).device
        embeds = torch.zeros(len(rows), width, config.hidden_size, device=device)
        labels = torch.full((len(rows), width, config.num_codebooks), -100, dtype=torch.long, device=device)
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        end_frame = torch.full((1, 1, config.num_codebooks), config.codebook_eos_token_id, device=device)
        for row, (ids, codes) in enumerate(rows):
            ids, codes = ids.to(device), codes.to(device)
            # the embedding CSM's own forward gives these positions (_merge_input_ids_with_input_values)
            row_embeds = base.embed_text_tokens(ids)
            audio = ids == config.audio_token_id
            end = ids == config.audio_eos_token_id
            row_embeds[audio] = base.backbone_model.embed_tokens(codes[None])[0]
            row_embeds[end] = base.backbone_model.embed_tokens(end_frame)[0, 0]
            embeds[row, :len(ids)] = row_embeds
            labels[row, :len(ids)][audio] = codes
            labels[row, :len(ids)][end] = config.codebook_eos_token_id
            mask[row, :len(ids)] = 1
        return self.peft(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss


def _take_speaker(candidate: Candidate) -> int:
    """The speaker the take was read as (its JSON), else 0."""
    record = candidate.files.get("json")
    if record and Path(record).is_file():
        try:
            return int(json.loads(Path(record).read_text()).get("speaker", 0))
        except (ValueError, TypeError, AttributeError):
            return 0
    return 0
