"""The recipe of the built-in model runs end to end (tiny settings, pieces written by hand) and its
output loads; the harmoniser gives fiddle tunes sensible chords; the shipped model is small."""
import json

import pytest

from studio.media import get
from studio.media.music import ASSETS, defaults, repertoire
from studio.media.music.vocab import VOICES

from .conftest import TINY, block_chorale, scale_tune, small_repertoire


def test_train_writes_a_loadable_safetensors_model(tmp_path):
    figures = defaults.train(tmp_path / "m", "cpu", seed=0, pieces=small_repertoire() * 2, steps=3, recipe=TINY,
                             log=lambda line: None)
    assert figures["recipe"]["steps"] == 3 and figures["held_out_loss"] > 0
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "studio_music.json", "TRAINING.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    meta = json.loads((tmp_path / "m" / "studio_music.json").read_text())
    assert meta == {"kind": "symbolic", "max_bars": defaults.RECIPE["window_bars"]}
    medium = get("music")
    handle = medium.load(str(tmp_path / "m"), "cpu")
    gens = medium.generate(handle, "a march", [0, 1], medium.validate_params({"bars": 2}))
    assert [list(g.files) for g in gens] == [["mid", "wav", "png"]] * 2


def test_windows_keep_cadence_marks_only_at_the_end_and_transpose_in_range():
    import numpy as np

    piece = scale_tune("reel", "4/4", 2, "major", 16)
    parts = defaults.windows(piece, 8, 4, 512)
    assert [len(w.bars) for w in parts] == [8, 8, 8]
    assert [w.ending for w in parts] == [False, False, True]
    assert "bar:last" not in parts[0].tokens() and parts[-1].tokens()[-2:] != ["bar:last"]
    data = defaults.Windows([piece, block_chorale()], defaults.build_tokenizer(), defaults.RECIPE)
    assert len(data.rows) == 4 and data.chorale == [False, False, False, True]
    ids, mask, labels, _ = data.batch([0, 3], np.random.default_rng(0))
    tokenizer = defaults.build_tokenizer()
    for row in ids.tolist():
        tokens = tokenizer.convert_ids_to_tokens([i for i in row if i != 0])
        assert all(t.startswith(("<", "style", "meter", "key", "mode", "bar", "pos", "v")) for t in tokens)



def test_cadence_weight_weighs_the_last_two_bars_of_an_ending_window_alone():
    import numpy as np
    import torch

    piece = scale_tune("reel", "4/4", 2, "major", 16)
    tokenizer = defaults.build_tokenizer()
    vocab = tokenizer.get_vocab()
    data = defaults.Windows([piece], tokenizer, defaults.RECIPE)  # two middles, one ending
    ids, mask, labels, weights = data.batch([0, 2], np.random.default_rng(0), cadence_weight=4.0)
    assert weights[0].eq(1).all()  # a window that does not end its piece has no cadence to weigh
    mark = ids[1].tolist().index(vocab["bar:penultimate"])
    assert weights[1, :mark].eq(1).all() and weights[1, mark:].eq(4).all()
    model = defaults.build_model(len(vocab), vocab["<pad>"], vocab["<bos>"], vocab["<eos>"],
                                 dict(defaults.RECIPE, **TINY))
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        logits = model(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(defaults.weighted_loss(logits, labels, torch.ones_like(weights)), plain)
        heavy = defaults.weighted_loss(logits, labels, weights)
        counted = labels[:, 1:] != -100
        each = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                                 ignore_index=-100, reduction="none").view(counted.shape)
        w = weights[:, 1:] * counted
        assert torch.allclose(heavy, (each * w).sum() / w.sum()) and not torch.allclose(heavy, plain)


def test_the_harmoniser_picks_the_chords_a_melody_outlines():
    # C major in quarter notes, a bar each outlining C, G, F and C (two chords a bar in 4/4)
    pitches = [60, 64, 67, 64, 67, 71, 74, 71, 65, 69, 72, 69, 60, 64, 67, 72]
    melody = [(4 * i, 4, p) for i, p in enumerate(pitches)]
    chords = repertoire.harmonise(melody, 0, "major", "reel", "4/4", 4)
    assert chords == [0, 0, 4, 4, 3, 3, 0, 0]
    voices = repertoire.accompany(melody, chords, 0, "major", "reel", "4/4", 4)
    assert len(voices) == VOICES - 1 and all(voices)
    first_bass = voices[2][0][2]
    assert first_bass % 12 == 0  # the tonic's root


@pytest.mark.parametrize("title, meter, style", [("Acacia -- Reel", "4/4", "reel"), ("Haste to the Wedding", "6/8", "jig"),
                                                 ("Quick Step. 25th Regt.", "2/4", "march"), ("Lady Mary", "3/4", "waltz")])
def test_styles_come_from_titles_and_metres(title, meter, style):
    assert repertoire.style_of(title, meter, "aird", long_notes=False) == style


def test_shipped_default_is_small_and_records_its_training():
    if (ASSETS / "model.safetensors").exists():
        assert sum(p.stat().st_size for p in ASSETS.iterdir()) <= 20 * 2 ** 20
        record = json.loads((ASSETS / "TRAINING.json").read_text())
        assert {"recipe", "data", "seconds", "held_out_loss"} <= set(record)
        assert (ASSETS / "README.md").exists()


def test_a_cached_repertoire_is_completed_not_trusted(tmp_path, monkeypatch):
    chorale = block_chorale()
    chorale.source = "bach"
    cache = tmp_path / "pieces.json"
    cache.write_text(json.dumps(repertoire.to_json([chorale])))
    asked = []

    def read(names, log=print):
        asked.append(list(names))
        tune = scale_tune("reel", "4/4", 2, "major", 8)
        tune.source = "aird"
        return [tune]

    monkeypatch.setattr(repertoire, "read_repertoire", read)
    pieces = defaults.load_repertoire(cache, log=lambda line: None, names=("bach", "aird"))
    assert asked == [["aird"]] and [p.source for p in pieces] == ["bach", "aird"]
    assert [row["source"] for row in json.loads(cache.read_text())] == ["bach", "aird"]
    again = defaults.load_repertoire(cache, log=lambda line: None, names=("bach",))
    assert asked == [["aird"]] and [p.source for p in again] == ["bach"]


def test_the_command_learns_from_the_repertories_it_is_given(tmp_path, monkeypatch):
    chorales = [block_chorale(), block_chorale()]
    for c in chorales:
        c.source = "bach"
    cache = tmp_path / "pieces.json"
    cache.write_text(json.dumps(repertoire.to_json(chorales)))

    def read(names, log=print):
        raise AssertionError(f"read {names}: only bach was asked for, and the cache has it")

    monkeypatch.setattr(repertoire, "read_repertoire", read)
    assert defaults.main(["--out", str(tmp_path / "m"), "--cache", str(cache), "--repertories", "bach",
                          "--steps", "2"]) == 0
    figures = json.loads((tmp_path / "m" / "TRAINING.json").read_text())
    assert list(figures["data"]["repertories"]) == ["bach"] and figures["steps_done"] == 2
