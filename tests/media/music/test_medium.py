"""The music medium on a tiny model trained in the test: files, reproducibility, bad input,
scorers, tune, export.  ``test_builtin.py`` checks the shipped model (slow)."""
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
from studio.media.music.events import Piece, piece_from_notes, to_midi_bytes
from studio.media.music.vocab import VOICE_RANGE, VOICES
from studio.runner import late_rewards

from .conftest import block_chorale, scale_tune

PROMPT = "a cheerful waltz in G major on the flute"


@pytest.fixture(scope="module")
def music(tiny_model):
    medium = get("music")
    return medium, medium.load(tiny_model, "cpu")


def candidates_of(gens, root, prompt=PROMPT):
    out = []
    for g in gens:
        files = {}
        for ext, data in g.files.items():
            (root / f"{g.seed}.{ext}").write_bytes(data)
            files[ext] = str(root / f"{g.seed}.{ext}")
        out.append(Candidate(id=f"c{g.seed}", medium="music", prompt=prompt, seed=g.seed, params={},
                             version="base", model="default", path=files["mid"], files=files))
    return out


@pytest.fixture(scope="module")
def made(music, tmp_path_factory):
    medium, handle = music
    gens = medium.generate(handle, PROMPT, list(range(6)), medium.validate_params({"bars": 4}))
    return gens, candidates_of(gens, tmp_path_factory.mktemp("made"))


def test_every_candidate_is_four_voices_in_midi_wav_and_piano_roll(music, made):
    gens, candidates = made
    for g in gens:
        assert list(g.files) == ["mid", "wav", "png"]
        mid = mido.MidiFile(file=io.BytesIO(g.files["mid"]))
        assert any(m.type == "time_signature" and (m.numerator, m.denominator) == (3, 4) for m in mid.tracks[0])
        assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 138 for m in mid.tracks[0])
        programs = [m.program for t in mid.tracks for m in t if m.type == "program_change"]
        assert len(programs) == VOICES and programs[0] == 73  # the flute plays the melody
        pretty_midi.PrettyMIDI(io.BytesIO(g.files["mid"]))  # a standard file other tools read
        from studio.media.music.events import read_midi

        for voice, notes in enumerate(read_midi(g.files["mid"]).voice_notes()):
            low, high = VOICE_RANGE[voice]
            assert all(low <= pitch <= high for _, _, pitch in notes)
        signal, rate = soundfile.read(io.BytesIO(g.files["wav"]))
        assert rate == 22050 and 0.5 < np.abs(signal).max() < 1.0
        Image.open(io.BytesIO(g.files["png"])).verify()


def test_prompt_tags_steer_and_seeds_reproduce(music, made):
    medium, handle = music
    gens, candidates = made
    from studio.media.music.events import read_midi

    for c in candidates:
        piece = read_midi(c.path)
        assert (piece.tags["style"], piece.tags["key"], piece.tags["mode"]) == ("waltz", "G", "major")
        assert len(piece.bars) == 4
    alone = medium.generate(handle, PROMPT, [5], medium.validate_params({"bars": 4}))
    assert alone[0].files["mid"] == gens[5].files["mid"]  # a candidate does not depend on its batch-mates
    assert len({g.files["mid"] for g in gens}) == 6


@pytest.mark.parametrize("prompt, params, words", [
    ("a waltz march", {}, "contradictory"),
    ("major minor", {}, "contradictory"),
    ("a waltz", {"bars": 64}, "range"),
])
def test_bad_input_is_one_sentence(music, prompt, params, words):
    medium, handle = music
    with pytest.raises(StudioError, match=words):
        medium.generate(handle, prompt, [0], medium.validate_params(params))


def test_unknown_settings_are_refused(music):
    medium, _ = music
    with pytest.raises(StudioError):
        medium.validate_params({"timbre": "kazoo"})
    assert medium.validate_params({"timbre": "brass"})["timbre"] == "brass"
    with pytest.raises(StudioError):
        medium.validate_params({"steps": 3})


def test_a_later_round_steps_at_a_third_of_the_rate(music):
    """Measured on the built-in model's chorale rounds (docs/objectives.md, "Music: a gentler later round")."""
    from studio.training import tune_lr

    medium, _ = music
    settings = medium.parse_tune_settings({})
    assert settings["tuned_lr_scale"] == 0.3
    assert tune_lr(settings, None) == settings["lr"]  # a first round: the rate itself
    assert tune_lr(settings, "v1/adapter") == pytest.approx(0.3 * settings["lr"])


def test_the_page_lists_the_prompt_words(music):
    medium, _ = music
    assert "**style:**" in medium.prompt_help and "chorale" in medium.prompt_help and "fiddle" in medium.prompt_help


def _written(tmp_path, name, piece: Piece) -> Candidate:
    path = tmp_path / f"{name}.mid"
    path.write_bytes(to_midi_bytes(piece))
    return Candidate(id=name, medium="music", prompt="", seed=0, params={}, version="base", model="",
                     path=str(path), files={"mid": str(path)})


def test_every_scorer_is_in_unit_range_and_says_what_it_rewards(music, made):
    medium, handle = music
    _, candidates = made
    from studio.media.music.scorers import describe

    decided = [Candidate(**{**c.__dict__, "decision": "hand_accepted" if i % 2 else "hand_rejected"})
               for i, c in enumerate(candidates)]
    ctx = ScoringContext(medium=medium, favourites=candidates[:2], decided=decided,
                         options={}, embed=lambda cs: medium.embed(handle, cs))
    descriptions = describe()
    for name, factory in medium.scorers().items():
        assert descriptions[name].startswith(("Rewards", "Penalises")) and "\n" not in descriptions[name]
        if name == "clap":
            with pytest.raises(StudioError):
                factory(ctx)
            continue
        began = time.perf_counter()
        scores = factory(ctx)(candidates)
        assert len(scores) == 6 and all(0.0 <= s <= 1.0 for s in scores), name
        assert time.perf_counter() - began < 5, name
    fav = medium.scorers()["favourites"](ctx)(candidates)
    assert fav[0] == pytest.approx(1.0) and fav[1] == pytest.approx(1.0)
    feats = medium.embed(handle, candidates)
    assert feats.shape == (6, 51)
    assert 0.0 < medium.diversity(handle, candidates) < 1.0


def test_harmony_scorers_tell_good_part_writing_from_bad(music, tmp_path):
    medium, _ = music
    ctx = ScoringContext(medium=medium, favourites=[], decided=[])
    tags = {"style": "chorale", "meter": "4/4", "key": "C", "mode": "major"}
    good = block_chorale()  # G major, every voice in its range
    # every voice a fifth or an octave apart, all moving up by step together: parallels throughout
    parallel = piece_from_notes(tags, [[(4 * i, 4, 72 + i) for i in range(8)], [(4 * i, 4, 65 + i) for i in range(8)],
                                       [(4 * i, 4, 60 + i) for i in range(8)], [(4 * i, 4, 48 + i) for i in range(8)]], 2)
    clashing = piece_from_notes(tags, [[(0, 16, 72), (16, 16, 73)], [(0, 16, 71), (16, 16, 72)],
                                       [(0, 16, 61), (16, 16, 62)], [(0, 16, 49), (16, 16, 50)]], 2)
    crossed = piece_from_notes(tags, [[(0, 32, 50)], [(0, 32, 62)], [(0, 32, 79)], [(0, 32, 30)]], 2)
    offkey = piece_from_notes(tags, [[(0, 16, 73), (16, 16, 78)], [(0, 16, 66), (16, 16, 70)],
                                     [(0, 16, 61), (16, 16, 63)], [(0, 16, 42), (16, 16, 46)]], 2)
    made = [_written(tmp_path, n, p) for n, p in
            (("good", good), ("parallel", parallel), ("clashing", clashing), ("crossed", crossed), ("offkey", offkey))]

    def scores(name):
        return dict(zip(["good", "parallel", "clashing", "crossed", "offkey"], medium.scorers()[name](ctx)(made)))

    s = scores("voice_leading")
    assert s["good"] > 0.7 and s["parallel"] == 0.0
    s = scores("consonance")
    assert s["good"] == 1.0 and s["clashing"] < 0.6
    s = scores("voice_range")
    assert s["good"] == 1.0 and s["crossed"] < 0.3
    s = scores("cadence")
    assert s["good"] >= 0.7 and s["offkey"] == 0.0
    s = scores("stability")
    assert s["good"] > 0.6 and s["offkey"] < s["good"] - 0.3
    # the melody scorers still read the top voice
    smooth = scale_tune("reel", "4/4", 0, "major", 4)
    s = medium.scorers()["smoothness"](ctx)([_written(tmp_path, "smooth", smooth), made[3]])
    assert s[0] > 0.8


def test_a_quoted_phrase_is_a_copy_but_a_shared_scale_fragment_is_not(music, tmp_path):
    medium, handle = music
    tags = {"style": "chorale", "meter": "4/4", "key": "C", "mode": "major"}

    def piece(name, melody):  # the melody in the top voice over a held bass
        t, notes = 0, []
        for pitch, length in melody:
            notes.append((t, length, pitch))
            t += length
        return _written(tmp_path, name, piece_from_notes(tags, [notes, [], [], [(0, t, 48)]], -(-t // 16)))

    kept_tune = [(72, 4), (76, 2), (74, 2), (79, 6), (77, 2), (76, 4), (74, 4), (72, 8), (71, 4), (72, 4), (74, 8)]
    kept = [piece("kept", kept_tune)]
    one_note = [*kept_tune[:3], (81, 6), *kept_tune[4:]]  # the kept tune back with one note changed
    new_rhythm = [(p, 4) for p, _ in kept_tune]  # its pitches in even quarters: the tune still heard
    # 8 steps of the C major scale, as the kept tune never plays them, against a kept scale in other lengths
    scale = [(p, 4) for p in (72, 74, 76, 77, 79, 81, 83, 84)]
    other = [(60, 16), *[(p, 2) for p in (72, 74, 76, 77, 79, 81, 83, 84)], (60, 16)]
    ours = [piece("one_note", one_note), piece("new_rhythm", new_rhythm), piece("scale", scale)]
    assert medium.copies(handle, ours, kept) == [True, True, False]
    assert medium.copies(handle, [piece("scale_again", scale)], [piece("other", other)]) == [False]
    assert medium.copies(handle, [piece("scale_same", scale)], [piece("scale_kept", scale)]) == [True]


def test_tune_saves_a_peft_adapter_and_exports(music, made, tmp_path):
    medium, handle = music
    _, candidates = made
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
    # the tuned version generates
    gens = medium.generate(handle, PROMPT, [0], medium.validate_params({"bars": 2}), adapter=str(tmp_path / "v1"))
    assert gens[0].files["mid"]

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


def test_a_kto_tune_raises_the_kept_pieces_and_lowers_the_dropped_against_the_start(music, made, tmp_path):
    import torch

    medium, handle = music
    _, candidates = made
    kept, dropped = candidates[:3], candidates[3:]
    settings = dict(medium.tune_defaults, objective="kto", beta=0.5, steps=12, lr=2e-2, batch_size=6, seed=0,
                    transpose=0)  # each piece once: row i is candidate i
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    reference = task.preference.reference
    with torch.no_grad():
        assert task.sequence_log_probs(torch.arange(6)).tolist() == pytest.approx(reference.tolist(), abs=1e-3)
    training.run_tune(task, settings, tmp_path / "job")
    with torch.no_grad():
        moved = task.sequence_log_probs(torch.arange(6)) - reference
    assert float(moved[:3].min()) > 0 > float(moved[3:].max())
    rewards = late_rewards(training.read_progress(tmp_path / "job"))  # each step logged its batch's rewards
    assert rewards["kept_reward"] > 0 > rewards["dropped_reward"]
    assert medium.tune_task(handle, kept, settings, None).preference is None  # no drops given: the kept set alone
    assert task.preference.kept_floor == 0.0  # off by default; a preset's kept_floor reaches the loss
    floored = dict(settings, objective="dpo", kept_floor=1.0)
    assert medium.tune_task(handle, kept, floored, None, dropped=dropped).preference.kept_floor == 1.0
    with pytest.raises(StudioError, match="kept_floor"):
        medium.parse_tune_settings({"objective": "sft", "kept_floor": 1.0})
    paired = medium.tune_task(handle, kept, dict(settings, objective="ipo"), None, dropped=dropped)
    assert paired.preference.objective == "ipo" and len(paired.preference.pairs) == 9  # 3 kept x 3 dropped


def test_a_transposing_tune_learns_each_piece_in_the_keys_around_its_own(music, made):
    from studio.media.music.vocab import transposed

    medium, handle = music
    _, candidates = made
    kept, dropped = candidates[:3], candidates[3:]
    vocab = handle.tokenizer.get_vocab()
    assert medium.tune_defaults["transpose"] == 2  # the measured default
    plain = medium.tune_task(handle, kept, dict(medium.tune_defaults, objective="kto", transpose=0), None,
                             dropped=dropped)
    moved = medium.tune_task(handle, kept, dict(medium.tune_defaults, objective="kto", transpose=2), None,
                             dropped=dropped)
    assert plain.kept_rows == 3 and plain.preference.total == 6  # 0: each piece once
    assert 3 < moved.kept_rows <= 15 and moved.preference.kept == moved.kept_rows  # kept rows first, then the dropped
    first = [t for t in moved.ids[0].tolist() if t != vocab["<pad>"]]
    assert first == [t for t in plain.ids[0].tolist() if t != vocab["<pad>"]]  # each piece itself comes first
    names = {i: t for t, i in vocab.items()}
    up = [names[t] for t in moved.ids[1].tolist() if t != vocab["<pad>"]]
    assert up == transposed([names[t] for t in first], 1) or up == transposed([names[t] for t in first], -1)
    assert moved.preference.reference.shape[0] == len(moved.ids)  # the start's log-prob of every moved row too
    with pytest.raises(StudioError, match="transpose"):
        medium.parse_tune_settings({"transpose": 7})
