"""The music medium on its shipped default: files, reproducibility, bad input, scorers, tune, export."""
import io
import json
import time

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile
from PIL import Image

from studio import training
from studio.errors import StudioError
from studio.media import get
from studio.medium import Candidate, ScoringContext, Version
from studio.media.music import ASSETS

pytestmark = pytest.mark.skipif(not (ASSETS / "model.safetensors").exists(),
                                reason="the embedded default is not built")
PROMPT = "a cheerful waltz in G major"


@pytest.fixture(scope="module")
def music():
    medium = get("music")
    return medium, medium.load(medium.default_model(), "cpu")


@pytest.fixture(scope="module")
def made(music, tmp_path_factory):
    medium, handle = music
    root = tmp_path_factory.mktemp("made")
    began = time.perf_counter()
    gens = medium.generate(handle, PROMPT, list(range(8)), medium.validate_params({}))
    seconds = time.perf_counter() - began
    candidates = []
    for g in gens:
        files = {}
        for ext, data in g.files.items():
            (root / f"{g.seed}.{ext}").write_bytes(data)
            files[ext] = str(root / f"{g.seed}.{ext}")
        candidates.append(Candidate(id=f"c{g.seed}", medium="music", prompt=PROMPT, seed=g.seed, params={},
                                    version="base", model="default", path=files["mid"], files=files))
    return gens, candidates, seconds


def test_every_candidate_is_midi_wav_and_piano_roll(music, made):
    gens, candidates, seconds = made
    print(f"\n8 candidates of 8 bars in {seconds:.2f} s")
    for g in gens:
        assert list(g.files) == ["mid", "wav", "png"]
        mid = mido.MidiFile(file=io.BytesIO(g.files["mid"]))
        assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (3, 4) for m in mid.tracks[0])
        pm = pretty_midi.PrettyMIDI(io.BytesIO(g.files["mid"]))
        notes = pm.instruments[0].notes
        assert notes and all(48 <= n.pitch <= 84 for n in notes)
        signal, rate = soundfile.read(io.BytesIO(g.files["wav"]))
        assert rate == 22050 and 0.5 < np.abs(signal).max() < 1.0
        assert abs(len(signal) / rate - pm.get_end_time()) < 1.0
        Image.open(io.BytesIO(g.files["png"])).verify()


def test_prompt_tags_steer_and_seeds_reproduce(music, made):
    medium, handle = music
    gens, candidates, _ = made
    from studio.media.music.events import read_midi

    for c in candidates:
        piece = read_midi(c.path)
        assert (piece.tags["style"], piece.tags["key"], piece.tags["mode"]) == ("waltz", "G", "major")
        assert len(piece.bars) == 8
    alone = medium.generate(handle, PROMPT, [5], medium.validate_params({}))
    assert alone[0].files["mid"] == gens[5].files["mid"]  # a candidate does not depend on its batch-mates
    assert len({g.files["mid"] for g in gens}) == 8


@pytest.mark.parametrize("prompt, params, words", [
    ("a waltz march", {}, "contradictory"),
    ("major minor", {}, "contradictory"),
    ("a waltz", {"bars": 64}, "limit"),
])
def test_bad_input_is_one_sentence(music, prompt, params, words):
    medium, handle = music
    with pytest.raises(StudioError, match=words):
        medium.generate(handle, prompt, [0], medium.validate_params(params))


def test_unknown_settings_are_refused(music):
    medium, _ = music
    with pytest.raises(StudioError):
        medium.validate_params({"timbre": "kazoo"})
    with pytest.raises(StudioError):
        medium.validate_params({"steps": 3})


def test_scorers_are_in_unit_range_and_tell_smooth_from_jumpy(music, made, tmp_path):
    medium, handle = music
    _, candidates, _ = made
    decided = [Candidate(**{**c.__dict__, "decision": "hand_accepted" if i % 2 else "hand_rejected"})
               for i, c in enumerate(candidates)]
    ctx = ScoringContext(medium=medium, favourites=candidates[:2], decided=decided,
                         options={}, embed=lambda cs: medium.embed(handle, cs))
    for name, factory in medium.scorers().items():
        if name == "clap":
            with pytest.raises(StudioError):
                factory(ctx)
            continue
        began = time.perf_counter()
        scores = factory(ctx)(candidates)
        assert len(scores) == 8 and all(0.0 <= s <= 1.0 for s in scores), name
        assert time.perf_counter() - began < 5, name
    fav = medium.scorers()["favourites"](ctx)(candidates)
    assert fav[0] == pytest.approx(1.0) and fav[1] == pytest.approx(1.0)

    from studio.media.music.events import Bar, Piece, to_midi_bytes

    tags = {"style": "waltz", "meter": "3/4", "key": "C", "mode": "major", "tempo": "moderate"}
    smooth = Piece(tags, [Bar("mf", [(60, 4), (62, 4), (64, 4)]), Bar("mf", [(65, 4), (64, 4), (62, 4)])])
    jumpy = Piece(tags, [Bar("mf", [(60, 4), (79, 4), (50, 4)]), Bar("mf", [(73, 4), (51, 4), (66, 4)])])
    tonal = Piece(tags, [Bar("mf", [(60, 4), (64, 4), (67, 4)]), Bar("mf", [(65, 4), (62, 4), (60, 4)]),
                         Bar("mf", [(67, 4), (71, 4), (62, 4)]), Bar("mf", [(60, 12)])])
    chromatic = Piece(tags, [Bar("mf", [(60, 4), (61, 4), (62, 4)]), Bar("mf", [(63, 4), (64, 4), (65, 4)]),
                             Bar("mf", [(66, 4), (67, 4), (68, 4)]), Bar("mf", [(69, 4), (70, 4), (71, 4)])])
    made_ = []
    for name, piece in (("smooth", smooth), ("jumpy", jumpy), ("tonal", tonal), ("chromatic", chromatic)):
        (tmp_path / f"{name}.mid").write_bytes(to_midi_bytes(piece))
        made_.append(Candidate(id=name, medium="music", prompt="", seed=0, params={}, version="base", model="",
                               path=str(tmp_path / f"{name}.mid"), files={"mid": str(tmp_path / f"{name}.mid")}))
    s = medium.scorers()["smoothness"](ctx)(made_)
    assert s[0] > s[1] + 0.2
    s = medium.scorers()["key"](ctx)(made_)
    assert s[2] > 0.7 and s[2] > s[3] + 0.3
    s = medium.scorers()["key"](ScoringContext(medium=medium, favourites=[], decided=[],
                                                options={"key": "F# major"}))(made_)
    assert s[2] < 0.2  # C major material is far from F# major

    feats = medium.embed(handle, candidates)
    assert feats.shape == (8, 35)
    assert 0.0 < medium.diversity(handle, candidates) < 1.0


def test_tune_saves_a_peft_adapter_and_exports(music, made, tmp_path):
    medium, handle = music
    _, candidates, _ = made
    kept = candidates[:3]
    settings = dict(medium.tune_defaults, steps=3, seed=0)
    task = medium.tune_task(handle, kept, settings, None)
    training.run_tune(task, settings, tmp_path / "job")
    task.save(tmp_path / "v1")
    config = json.loads((tmp_path / "v1" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and (tmp_path / "v1" / "adapter_model.safetensors").exists()
    # a child tune starts from its parent's weights
    child = medium.tune_task(handle, kept, settings, str(tmp_path / "v1"))
    parent_state = {k: v.detach().clone() for k, v in task.adapter_state().items()}
    assert all(np.allclose(parent_state[k].numpy(), v.detach().numpy()) for k, v in child.adapter_state().items())

    version = Version(medium="music", name="v1", parent="base", model="default", settings=settings,
                      curated=[c.id for c in kept], path=str(tmp_path / "v1"))
    files = medium.export(handle, version, "peft", tmp_path / "peft", kept)
    assert {p.name for p in files} >= {"adapter_config.json", "adapter_model.safetensors"}
    files = medium.export(handle, version, "dataset", tmp_path / "data", kept)
    rows = [json.loads(line) for line in (tmp_path / "data" / "metadata.jsonl").read_text().splitlines()]
    assert [(r["midi_file"], r["file_name"]) for r in rows] == [(f"{c.id}.mid", f"{c.id}.wav") for c in kept]
    for r in rows:
        pretty_midi.PrettyMIDI(str(tmp_path / "data" / r["midi_file"]))
        assert soundfile.info(str(tmp_path / "data" / r["file_name"])).samplerate == 22050
    with pytest.raises(StudioError, match="base model has no adapter"):
        medium.export(handle, None, "peft", tmp_path / "none", kept)
    assert not (tmp_path / "none").exists()


def test_unparseable_midi_exemplar_is_refused_before_anything_is_written(music, tmp_path):
    medium, handle = music
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    exemplar = Candidate(id="x", medium="music", prompt="", seed=0, params={}, version="base", model="",
                         path=str(bad), files={"mid": str(bad)}, decision="hand_accepted")
    with pytest.raises(StudioError, match="not a readable MIDI file"):
        medium.tune_task(handle, [exemplar], dict(medium.tune_defaults), None)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.mid"]
