"""Listening to a take: pocketsphinx's transcript (BSD, ships an English model) and DNSMOS's
overall quality (the ONNX model shipped in ``speechmos``, MIT).  Both are slow on a CPU, so
their answers are cached on disk by the WAV's content (``cache_dir()/voice-listening``)."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import threading
from pathlib import Path

import numpy as np

from ...errors import StudioError
from ...paths import cache_dir

RECOGNISER_RATE = 16000
_lock = threading.Lock()  # one pocketsphinx decoder, used by one caller at a time


def normalise_text(text: str) -> str:
    """Lower case letters, digits and single spaces: what a character error rate compares."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())


def character_error_rate(reference: str, heard: str) -> float:
    """Levenshtein distance between the normalised texts over the reference's length (can exceed 1)."""
    from ...variety import edit_distance

    ref, hyp = normalise_text(reference), normalise_text(heard)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g)


@functools.lru_cache(maxsize=1)
def _decoder():
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise StudioError("The intelligibility scorer needs the offline recogniser: pip install pocketsphinx.") from None
    # capped search (active HMMs and words per frame): a third of the time, the same transcripts of speech
    return Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL", maxhmmpf=3000, maxwpf=5)


def _pcm(audio: np.ndarray, rate: int) -> bytes:
    """16 kHz 16-bit PCM of the audio, a quarter second of silence added each side."""
    audio = _resample(np.asarray(audio, dtype=np.float64), rate, RECOGNISER_RATE)
    pad = np.zeros(RECOGNISER_RATE // 4)
    return (np.clip(np.concatenate([pad, audio, pad]), -1, 1) * 32767).astype(np.int16).tobytes()


def _decode(decoder, pcm: bytes):
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return decoder.hyp()


def transcribe(audio: np.ndarray, rate: int) -> str:
    """pocketsphinx's English transcript of the audio."""
    pcm = _pcm(audio, rate)
    with _lock:
        hypothesis = _decode(_decoder(), pcm)
    return hypothesis.hypstr if hypothesis is not None else ""


def clarity(line: str, audio: np.ndarray, rate: int) -> float:
    """How clearly the audio says ``line``, 0 to 1: the recogniser's acoustic score of the line forced onto
    the take, per frame of speech, against the best-scoring sound of each frame (pocketsphinx scores every
    frame relative to its best senone, so this is the geometric mean of P(the line's sound) / P(the best
    sound): a goodness of pronunciation).  Words the recogniser's dictionary lacks are left out of the
    alignment; 0 when nothing of the line can be aligned."""
    pcm = _pcm(audio, rate)
    with _lock:
        decoder = _decoder()
        words = [w for w in normalise_text(line).split() if decoder.lookup_word(w) is not None]
        if not words:
            return 0.0
        try:
            decoder.set_align_text(" ".join(words))
            aligned = _decode(decoder, pcm)
            segments = [s for s in decoder.seg() if s.word not in ("<s>", "</s>", "<sil>")] if aligned else []
        except RuntimeError:  # the audio cannot carry the alignment (too short for its phones)
            segments = []
        finally:
            decoder.activate_search()  # back to free recognition
    frames = sum(s.end_frame - s.start_frame + 1 for s in segments)
    if not frames:
        return 0.0
    return float(np.exp(sum(np.log(max(s.ascore, 1e-300)) for s in segments) / frames))


@functools.lru_cache(maxsize=1)
def _dnsmos():
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise StudioError("The naturalness scorer needs DNSMOS: pip install speechmos onnxruntime.")
    model = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
    try:
        import onnxruntime
    except ImportError:
        raise StudioError("The naturalness scorer needs onnxruntime: pip install onnxruntime.") from None
    if not model.exists():
        raise StudioError(f"The DNSMOS model is missing from the speechmos package ({model}).")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


DNSMOS_SECONDS = 9.01  # the model's input window
OVERALL_FIT = (-0.06766283, 1.11546468, 0.04602535)  # DNSMOS's polynomial from raw to MOS (overall)


def overall_quality(audio: np.ndarray, rate: int) -> float:
    """DNSMOS overall MOS (1-5) of the audio, repeated to fill the model's 9-second window."""
    audio = _resample(np.asarray(audio, dtype=np.float64), rate, RECOGNISER_RATE).astype(np.float32)
    if not len(audio):
        return 1.0
    width = int(DNSMOS_SECONDS * RECOGNISER_RATE)
    while len(audio) < width:
        audio = np.concatenate([audio, audio])
    session = _dnsmos()
    scores = []
    for start in range(0, max(1, len(audio) - width + 1), RECOGNISER_RATE):
        segment = audio[start:start + width][None]
        raw = session.run(None, {"input_1": segment})[0][0]
        scores.append(float(np.polyval(OVERALL_FIT, float(raw[2]))))
    return float(np.mean(scores))


def _cache_file(kind: str, wav: str) -> Path:
    digest = hashlib.sha1(Path(wav).read_bytes()).hexdigest()
    return cache_dir() / "voice-listening" / kind / f"{digest}.json"


def cached(kind: str, wav: str, compute):
    """``compute(audio, rate)`` for the WAV at ``wav``, remembered by the file's content."""
    from ...fsutil import atomic_write_text
    from .audio import read_wav

    path = _cache_file(kind, wav)
    if path.exists():
        try:
            return json.loads(path.read_text())["value"]
        except (ValueError, KeyError):
            pass
    audio, rate = read_wav(wav)
    value = compute(audio, rate)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"value": value}))
    except OSError:  # a read-only cache only costs time
        pass
    return value
