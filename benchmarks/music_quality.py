"""Measured quality of a symbolic music model: issue 18's checks and the scorers' means.

For each prompt, ``-n`` candidates on seeds 0.. : the share of onsets where three or more notes
sound, the playing speed, whether a bass plays, notes per bar, and every harmony and melody
scorer's mean.  ``--render DIR`` also writes each candidate's MIDI, WAV (FluidSynth when
installed) and piano roll there for listening.  ``--record`` adds the figures to the model's
TRAINING.json under ``quality``.

    python benchmarks/music_quality.py [--model DIR] [-n 8] [--prompt TEXT ...] [--render /tmp/listen] [--record]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = ["a four-part chorale in G major", "a fast reel in D", "a waltz in F", "a slow air in A minor",
           "a jig in G"]
SCORERS = ["voice_leading", "voice_range", "consonance", "cadence", "stability", "key", "rhythm", "smoothness"]


def measure(model: str | None, n: int, render: Path | None, prompts=PROMPTS) -> dict:
    import mido
    import numpy as np

    from studio.media import get
    from studio.media.music.events import read_midi
    from studio.media.music.features import sonorities
    from studio.medium import Candidate, ScoringContext

    medium = get("music")
    handle = medium.load(model or medium.default_model(), "cpu")
    ctx = ScoringContext(medium=medium, favourites=[], decided=[])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in prompts:
            began = time.perf_counter()
            gens = medium.generate(handle, prompt, list(range(n)), medium.validate_params({}))
            seconds = time.perf_counter() - began
            rows, candidates = [], []
            for g in gens:
                stem = f"{prompt.replace(' ', '-')}-{g.seed}"
                folder = render or Path(tmp)
                folder.mkdir(parents=True, exist_ok=True)
                files = {}
                for ext, data in g.files.items():
                    (folder / f"{stem}.{ext}").write_bytes(data)
                    files[ext] = str(folder / f"{stem}.{ext}")
                candidates.append(Candidate(id=stem, medium="music", prompt=prompt, seed=g.seed, params={},
                                            version="base", model="", path=files["mid"], files=files))
                piece = read_midi(g.files["mid"])
                onsets = sonorities(piece)
                mid = mido.MidiFile(file=io.BytesIO(g.files["mid"]))
                voices = piece.voice_notes()
                rows.append({"chords": sum(sum(p is not None for p in s) >= 3 for _, s, _ in onsets) / max(1, len(onsets)),
                             "bpm": round(mido.tempo2bpm([m.tempo for m in mid.tracks[0] if m.type == "set_tempo"][0])),
                             "bass": bool(voices[3]), "seconds": mid.length,
                             "melody_notes_per_bar": len(voices[0]) / len(piece.bars), "tags": piece.tags})
            scores = {name: round(float(np.mean(medium.scorers()[name](ctx)(candidates))), 3) for name in SCORERS}
            out[prompt] = {
                "n": n, "generate_seconds": round(seconds, 1),
                "share_of_onsets_with_3_or_more_notes": round(float(np.mean([r["chords"] for r in rows])), 3),
                "min_share_with_3_or_more_notes": round(min(r["chords"] for r in rows), 3),
                "bpm": sorted({r["bpm"] for r in rows}), "with_bass": sum(r["bass"] for r in rows),
                "seconds_of_music": round(float(np.mean([r["seconds"] for r in rows])), 1),
                "melody_notes_per_bar": round(float(np.mean([r["melody_notes_per_bar"] for r in rows])), 2),
                "tags": sorted({" ".join(r["tags"].values()) for r in rows}), "scores": scores}
            print(json.dumps({prompt: out[prompt]}), flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the built-in)")
    parser.add_argument("-n", type=int, default=8)
    parser.add_argument("--prompt", action="append", help="measure this prompt (repeatable; default: "
                        "the five built-in prompts)")
    parser.add_argument("--render", type=Path, help="also write each candidate's MIDI, WAV and PNG here")
    parser.add_argument("--record", action="store_true", help="write the figures into the model's TRAINING.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    figures = measure(args.model, args.n, args.render, args.prompt or PROMPTS)
    if args.record:
        from studio.fsutil import atomic_write_text
        from studio.media import get

        folder = Path(args.model or get("music").default_model())
        record = json.loads((folder / "TRAINING.json").read_text())
        record["quality"] = {"measured": time.strftime("%Y-%m-%d"), "machine": "2-core x86-64 CPU, shared, 1 thread",
                             "prompts": figures}
        atomic_write_text(folder / "TRAINING.json", json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
