"""What a music tune on pieces that end at home teaches about endings (a diagnosis, not a default's judge).

For each seed: 32 pieces of the prompt; keep the 8 whose bass ends furthest toward the tonic by the built-in
``cadence`` scorer (ties by seed), drop the 8 lowest; one tune with the named settings; then, teacher-forced, the
probability the base and the tuned version give a bass on the tonic at the piece's last bass note (among all bass
notes at that token), averaged over the kept pieces, the dropped ones and 32 held-out base pieces of new seeds.  A
tune that learned "the bass ends on the tonic" raises it on held-out pieces; one that learned its kept pieces'
own endings raises it on the kept pieces alone.

    OMP_NUM_THREADS=1 python benchmarks/music_ending.py --seeds 0 1 2 --setting 'kto={}' --setting 'sft={"objective": "sft"}'
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from eval_suite import HELD_OUT, PROMPTS  # the held-out seeds and the chorale prompt the suite uses
from runs_file import named_settings, one_thread, record  # beside this script
from studio.media.music.vocab import VOICES


BASS = f"v{VOICES - 1}:p"  # a note of the lowest voice, as its token begins


def last_bass_index(tokens: list[str]) -> int | None:
    """The token position of the piece's last bass note (``v3:pNN``), or None when the bass never sounds."""
    found = [k for k, t in enumerate(tokens) if t.startswith(BASS)]
    return found[-1] if found else None


def tonic_share(model, vocab: dict[str, int], tokens: list[str], tonic: int) -> float | None:
    """P(a bass note on the tonic) over P(any bass note), at the piece's last bass note, teacher-forced."""
    import torch

    at = last_bass_index(tokens)
    if at is None:
        return None
    bass = {t: i for t, i in vocab.items() if t.startswith(BASS)}
    home = [i for t, i in bass.items() if int(t[len(BASS):]) % 12 == tonic]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[vocab[t] for t in tokens[:at]]])).logits[0, -1]
    p = torch.softmax(logits.float(), -1)
    return float(p[home].sum() / p[list(bass.values())].sum())


def ending(seed: int, settings: dict, prompt: str, n: int = 32) -> dict:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.engine import Studio
    from studio.media.music.events import read_midi
    from studio.media.music.scorers import closing_cadence
    from studio.media.music.vocab import KEYS

    with tempfile.TemporaryDirectory() as ws:
        studio = Studio(ws)
        pieces = studio.generate("music", prompt, seeds=list(range(1000 * seed, 1000 * seed + n)))
        read = [read_midi(c.path, name=c.id) for c in pieces]
        values = np.array([closing_cadence(p) for p in read])
        order = np.argsort(-values, kind="stable")
        quarter = n // 4
        kept, dropped = order[:quarter], order[-quarter:]
        studio.curate("music", accept=[pieces[i].id for i in kept], reject=[pieces[i].id for i in dropped],
                      apply_rule=False)
        version = studio.tune("music", settings=settings)["version"]
        held = studio.generate("music", prompt, seeds=list(range(HELD_OUT + 1000 * seed, HELD_OUT + 1000 * seed + n)))
        model_path = pieces[0].model
        found = studio.store.version("music", version)
        base = AutoModelForCausalLM.from_pretrained(model_path).eval()
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), found.path).eval()
        vocab = studio.handle("music", model_path).tokenizer.get_vocab()
        groups = {"kept": [read[i] for i in kept], "dropped": [read[i] for i in dropped],
                  "held_out": [read_midi(c.path, name=c.id) for c in held]}
        out = {"seed": seed, "settings": settings, "prompt": prompt, "version": version,
               "kept_cadence": float(values[kept].mean()), "dropped_cadence": float(values[dropped].mean())}
        for name, group in groups.items():
            for side, model in (("base", base), ("tuned", tuned)):
                shares = [tonic_share(model, vocab, p.tokens(), KEYS.index(p.tags["key"])) for p in group]
                shares = [s for s in shares if s is not None]
                out[f"{name}_{side}"] = float(np.mean(shares)) if shares else None
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--prompt", default=PROMPTS["music"])
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=JSON", help="music tune settings")
    parser.add_argument("--out", type=Path, help="append one JSON line per run")
    args = parser.parse_args(argv)
    one_thread()
    for name, settings in named_settings(args.setting):
        for seed in args.seeds:
            record({"name": name, **ending(seed, settings, args.prompt)}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
