"""The lift, at medium level: one round of rejection-sampling fine-tuning on the shipped default
at least doubles the acceptance rate on held-out seeds, at the same threshold.  Not met yet by
the shipped weights (docs/music-model.md: consonance 0.375 -> 0.219 on held-out seeds), so it is
an expected failure that reports when it starts to pass."""
import time
from pathlib import Path

import numpy as np
import pytest

from studio import training
from studio.media import get
from studio.medium import Candidate, ScoringContext
from studio.media.music import ASSETS

PROMPT = "a four-part chorale in G major"
SCORER = "consonance"


@pytest.fixture(autouse=True)
def _studio_synth(monkeypatch):
    # the rhythm scorer reads the MIDI; FluidSynth's sound (tests/media/music/test_fluid.py) would only
    # add a process per candidate to the slowest music test
    monkeypatch.setenv("STUDIO_MUSIC_RENDERER", "synth")


def _candidates(medium, handle, seeds, root: Path, version: str, adapter=None):
    gens = medium.generate(handle, PROMPT, seeds, medium.validate_params({}), adapter=adapter)
    out = []
    for g in gens:
        files = {}
        for ext, data in g.files.items():
            path = root / f"{version}-{g.seed}.{ext}"
            path.write_bytes(data)
            files[ext] = str(path)
        out.append(Candidate(id=f"{version}-{g.seed}", medium="music", prompt=PROMPT, seed=g.seed, params={},
                             version=version, model="default", path=files["mid"], files=files))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not (ASSETS / "model.safetensors").exists(), reason="the embedded default is not built")
@pytest.mark.xfail(reason="measured 2026-11-30: one round on 8 kept chorales does not lift consonance on the "
                   "shipped weights (held-out acceptance 0.375 -> 0.219; docs/music-model.md)", strict=False)
def test_one_round_doubles_acceptance_on_held_out_seeds(tmp_path):
    import torch

    torch.manual_seed(0)
    medium = get("music")
    handle = medium.load(medium.default_model(), "cpu")
    scorer = medium.scorers()[SCORER](ScoringContext(medium=medium, favourites=[], decided=[]))

    began = time.time()
    base = _candidates(medium, handle, list(range(32)), tmp_path, "base")
    scores = np.array(scorer(base))
    threshold = float(np.percentile(scores, 75))
    kept = [c for c, s in zip(base, scores) if s > threshold]
    for c in kept:
        c.decision = "auto_accepted"
    assert len(kept) >= 4

    settings = dict(medium.tune_defaults, steps=100, seed=0)
    task = medium.tune_task(handle, kept, settings, None)
    result = training.run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")
    assert (tmp_path / "v1" / "adapter_config.json").exists()
    assert (tmp_path / "v1" / "adapter_model.safetensors").exists()

    held_out = list(range(1000, 1032))
    before = np.array(scorer(_candidates(medium, handle, held_out, tmp_path, "heldbase")))
    after = np.array(scorer(_candidates(medium, handle, held_out, tmp_path, "v1", adapter=str(tmp_path / "v1"))))
    rate_before = float(np.mean(before > threshold))
    rate_after = float(np.mean(after > threshold))
    print(f"\nlift[{SCORER}] threshold={threshold:.3f} kept={len(kept)}/32 tune_loss={result['loss']:.3f} "
          f"acceptance base={rate_before:.3f} v1={rate_after:.3f} mean base={before.mean():.3f} "
          f"v1={after.mean():.3f} seconds={time.time() - began:.1f}")
    assert rate_after >= 2 * max(rate_before, 1 / 32)
    # switching back to base does not reload or keep the adapter on
    again = np.array(scorer(_candidates(medium, handle, held_out[:4], tmp_path, "base2")))
    assert np.allclose(again, before[:4])
