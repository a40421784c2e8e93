"""How far a voice tune carries what the kept takes share, on held-out seeds (a diagnosis, not a default's judge).

For each seed: 32 takes of the line; keep the 8 that lean furthest one way on one part of the reading, read from
each take's alignment (``low``: median pitch in semitones, ``slow``: total frames, ``span``: the 5th-95th percentile
pitch span, ``fall``: how far the last four voiced phonemes sit below the take's median pitch), drop the 8 that
lean furthest the other way; one tune with the named settings; then 32 held-out seeds read by the base and by the
tune, of the line and of a line no round read (``new_line_share``).  ``share`` is (tuned mean - base mean) /
(kept mean - batch mean): 1 is a tune that moves the readings as far as the kept takes lean (what sft on a
Gaussian reading does), below 1 short of it, far above 1 a tune pushed past them by the dropped takes.

    OMP_NUM_THREADS=1 python benchmarks/voice_carry.py low --seeds 0 1 2 --setting 'kto={}' --setting 'sft={"objective": "sft"}'

``--follow``: how far a commanded pitch shift (the ``pitch`` setting, -6 .. +6 semitones, 8 seeds each) reaches the
sound: the pitch the takes read against the median fundamental two pitch trackers hear in their WAVs (the studio's
``pitch_track`` and the evaluation suite's autocorrelation tracker, ``eval_scorers._pitches``).

    python benchmarks/voice_carry.py --follow     (one JSON line per shift, as every run here: runs_file.record)
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from eval_suite import HELD_OUT, HELD_OUT_PROMPTS  # the held-out seeds and line the suite measures on
from runs_file import named_settings, one_thread, record  # beside this script

LINE = "The quick brown fox jumps over the lazy dog."
NEW_LINE = HELD_OUT_PROMPTS["voice"]  # no round reads it
PARTS = {"low": 0, "slow": 1, "span": 2, "fall": 3}


def reading(candidate) -> tuple[float, float, float, float]:
    """(-median pitch in semitones above 100 Hz, total frames, pitch span in semitones, the fall at the end in
    semitones) from a take's alignment: larger leans further toward ``low``, ``slow``, ``span`` and ``fall``."""
    from studio.media.voice.phonemes import voiced

    alignment = json.loads(Path(candidate.files["json"]).read_text())
    semitones = 12 * np.log2(np.asarray(alignment["pitch_hz"], dtype=float) / 100)
    sounding = np.asarray(voiced(list(alignment["ids"])), dtype=bool)
    return (-float(np.median(semitones)), float(sum(alignment["durations"])),
            float(np.percentile(semitones, 95) - np.percentile(semitones, 5)),
            float(np.median(semitones[sounding]) - semitones[sounding][-4:].mean()))


def carry(part: str, seed: int, settings: dict, n: int = 32) -> dict:
    from studio.engine import Studio

    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        takes = studio.generate("voice", LINE, seeds=list(range(1000 * seed, 1000 * seed + n)))
        values = np.array([reading(c)[PARTS[part]] for c in takes])
        order = np.argsort(-values, kind="stable")
        quarter = n // 4
        studio.curate("voice", accept=[takes[i].id for i in order[:quarter]],
                      reject=[takes[i].id for i in order[-quarter:]], apply_rule=False)
        version = studio.tune("voice", settings=settings)["version"]
        held = list(range(HELD_OUT + 1000 * seed, HELD_OUT + 1000 * seed + n))
        kept = float(values[order[:quarter]].mean() - values.mean())
        out = {"part": part, "seed": seed, "settings": settings, "kept_lean": kept}
        for key, line in (("", LINE), ("new_line_", NEW_LINE)):
            sides = {v: np.array([reading(c)[PARTS[part]] for c in studio.generate("voice", line, seeds=held,
                                                                                    version=v)])
                     for v in ("base", version)}
            moved = float(sides[version].mean() - sides["base"].mean())
            out.update({key + "moved": moved, key + "share": moved / kept})
        return out


def follow(shifts=(-6, -3, 0, 3, 6), seeds=range(100, 108)) -> list[dict]:
    """Per commanded shift: the mean median pitch (semitones re 100 Hz) the takes read and the two trackers hear,
    each relative to the unshifted takes, and the trackers' spread over the takes."""
    from eval_scorers import _pitches
    from studio.engine import Studio
    from studio.media.voice.audio import pitch_track, read_wav

    def semitones(hz):
        return 12 * np.log2(np.median(hz) / 100) if len(hz) else float("nan")

    rows = []
    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        for shift in shifts:
            read, studio_heard, suite_heard = [], [], []
            for take in studio.generate("voice", LINE, seeds=list(seeds), params={"pitch": shift}):
                audio, rate = read_wav(take.files["wav"])
                tracked = pitch_track(audio, rate, hop=256)
                read.append(-reading(take)[PARTS["low"]])
                studio_heard.append(semitones(tracked[tracked > 0]))
                suite_heard.append(semitones(_pitches(take.files["wav"])))
            rows.append({"shift": shift, "read": float(np.mean(read)), "studio": float(np.mean(studio_heard)),
                         "suite": float(np.mean(suite_heard)), "studio_sd": float(np.std(studio_heard)),
                         "suite_sd": float(np.std(suite_heard))})
    centre = next(r for r in rows if r["shift"] == 0)
    for r in rows:
        for key in ("read", "studio", "suite"):
            r[key + "_move"] = r[key] - centre[key]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=sorted(PARTS))
    parser.add_argument("--follow", action="store_true", help="how far a commanded pitch shift reaches the sound")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=JSON", help="voice tune settings")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    args = parser.parse_args(argv)
    if not args.follow and not args.part:
        parser.error("name a part (low, slow, span) or --follow")
    one_thread()
    if args.follow:
        for row in follow():
            record({"follow": True, **row}, args.out)
        return 0
    for name, settings in named_settings(args.setting):
        for seed in args.seeds:
            record({"name": name, **carry(args.part, seed, settings)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
