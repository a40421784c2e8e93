"""The built-in voice's vocoders side by side: the pitch heard against the pitch read, the studio's scorers, and
the recogniser on held-out lines (docs/voice.md, "The vocoder").

For one vocoder (the ``vocoder`` generation setting; ``--smooth`` the pitched vocoder's envelope width in bins):

- ``follow``: the ``pitch`` setting at -6 .. +6 semitones, 8 seeds each: the median pitch the takes read on their
  sounding frames, and what the studio's tracker (``pitch_track``) and a plain autocorrelation tracker
  (``eval_scorers._pitches``, the evaluation suite's) hear in the WAVs, in semitones re 100 Hz;
- ``scorers``: naturalness (DNSMOS) and intelligibility on 16 takes of the fox line and on 4 lines x 6 seeds;
- ``held_out``: pocketsphinx's character error rate on the built-in voice's 50 held-out lines, seed 0.

    python benchmarks/voice_vocoder.py pitched --out runs.jsonl
    python benchmarks/voice_vocoder.py griffin-lim --out runs.jsonl
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import tempfile
from pathlib import Path

import numpy as np

from runs_file import one_thread, record  # beside this script

FOX = "The quick brown fox jumps over the lazy dog."
LINES = [FOX, "It was a quiet evening, and the lamps along the river were already lit.", "Please call Stella.",
         "A gentle breeze moved through the tall grass."]


def semitones(hz) -> float:
    return float(12 * np.log2(np.median(hz) / 100)) if len(hz) else float("nan")


def follow(studio, params: dict) -> list[dict]:
    from eval_scorers import _pitches
    from studio.media.voice.audio import pitch_track, read_wav
    from studio.media.voice.phonemes import voiced

    rows = []
    for shift in (-6, -3, 0, 3, 6):
        read, mine, plain = [], [], []
        for take in studio.generate("voice", FOX, seeds=list(range(100, 108)), params={**params, "pitch": shift}):
            alignment = json.loads(Path(take.files["json"]).read_text())
            sounding = np.repeat(voiced(alignment["ids"]), alignment["durations"])
            read.append(semitones(np.repeat(alignment["pitch_hz"], alignment["durations"])[sounding]))
            audio, rate = read_wav(take.files["wav"])
            tracked = pitch_track(audio, rate)
            mine.append(semitones(tracked[tracked > 0]))
            plain.append(semitones(_pitches(take.files["wav"])))
        rows.append({"shift": shift, "read": np.mean(read), "studio": np.mean(mine), "studio_sd": np.std(mine),
                     "autocorrelation": np.mean(plain), "autocorrelation_off": np.mean(np.abs(np.subtract(plain, read)))})
    return rows


def scorers(studio, params: dict) -> list[dict]:
    rows = []
    for name, lines, seeds in (("fox, 16 takes", [FOX], range(200, 216)), ("4 lines x 6 seeds", LINES, range(200, 206))):
        takes = [t for line in lines for t in studio.generate("voice", line, seeds=list(seeds), params=params)]
        for scorer in ("naturalness", "intelligibility", "pitch_range"):
            values = studio.score("voice", takes, [scorer])
            rows.append({"takes": name, "scorer": scorer, "mean": float(np.mean(values)), "sd": float(np.std(values))})
    return rows


def held_out(params: dict) -> dict:
    import soundfile

    from studio.media.voice import ASSETS, VoiceMedium
    from studio.media.voice.defaults import HELD_OUT, LINES as TRAINING
    from studio.media.voice.lines import held_out_lines, training_lines
    from studio.media.voice.recognise import character_error_rate, transcribe

    medium = VoiceMedium()
    handle = medium.load(str(ASSETS))
    rates = []
    for line in held_out_lines(HELD_OUT, training_lines(TRAINING)):
        take = medium.generate(handle, line, [0], params)[0]
        audio, rate = soundfile.read(io.BytesIO(take.files["wav"]), dtype="float32")
        rates.append(character_error_rate(line, transcribe(audio, rate)))
    rates = np.array(rates)
    return {"lines": len(rates), "mean_cer": float(rates.mean()), "median_cer": float(np.median(rates)),
            "share_cer_at_most_0.2": float((rates <= 0.2).mean()), "no_error": int((rates == 0).sum())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vocoder", choices=["pitched", "griffin-lim"])
    parser.add_argument("--smooth", type=int, help="the pitched vocoder's envelope width in bins (default: its own)")
    parser.add_argument("--glide", type=int, help="the pitched vocoder's pitch glide in frames (default: its own)")
    parser.add_argument("--out", type=Path, help="append one JSON line per row to this runs file")
    args = parser.parse_args(argv)
    one_thread()
    if args.smooth:
        import studio.media.voice.audio as audio

        audio.griffin_lim = functools.partial(audio.griffin_lim, smooth=args.smooth)
    if args.glide:
        import studio.media.voice.audio as audio

        audio.source = functools.partial(audio.source, glide=args.glide)
    from studio.engine import Studio

    params = {"vocoder": args.vocoder}
    tag = {"vocoder": args.vocoder, "smooth": args.smooth, "glide": args.glide}
    with tempfile.TemporaryDirectory() as workspace:
        studio = Studio(workspace)
        for row in follow(studio, params):
            record({**tag, "follow": True, **row}, args.out)
        for row in scorers(studio, params):
            record({**tag, **row}, args.out)
    record({**tag, "held_out": True, **held_out(params)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
