"""The evaluation-only text scorers read a poem as an artist would judge it (benchmarks/eval_scorers.py)."""
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import eval_scorers  # noqa: E402

HAIKU = "white snow on the pine\nthe crow settles on a branch\nthe field falls silent."
ESSAY = ("I was a boy when the first snow fell, a reminder of the fleeting beauty of life. This haiku captures the "
         "essence of the moment and the memory of the universe, and the imagery of the poem evokes my soul, and it")


# plain_words judges the words, not the form: the essay above is as plain as the haiku, this is not
LATINATE = ("Contemplating the ephemeral magnificence of precipitation, consciousness experiences tranquillity, "
            "illuminated perpetually by crystalline luminescence.")


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, text in (("haiku", HAIKU), ("essay", ESSAY), ("latinate", LATINATE)):
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text)
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize("scorer", eval_scorers.names("text"))
def test_the_haiku_beats_the_essay_on_every_text_scorer(files, scorer):
    fn = eval_scorers.EVAL_SCORERS["text"][1][scorer]
    haiku, essay = fn(files["haiku"]), fn(files["latinate" if scorer == "plain_words" else "essay"])
    assert 0.0 <= essay < haiku <= 1.0


def test_a_suite_has_six_scorers_per_medium():
    assert all(len(eval_scorers.names(m)) >= 6 for m in eval_scorers.EVAL_SCORERS)


LINE = "The quick brown fox jumps over the lazy dog."  # 35 letters


def _take(path: Path, seconds: float, f0, level_db, gaps: float) -> str:
    """A voiced take written as 16-bit PCM: harmonics on the pitch contour ``f0(t)``, loudness ``level_db(t)``,
    and silence over the share ``gaps`` of each 100 ms; the line beside it as .txt (as the studio writes it)."""
    import wave

    import numpy as np

    rate = 22050
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(f0(t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * 10 ** (level_db(t) / 20) * 0.3
    x = np.where((t % 0.1) < 0.1 * (1 - gaps), x, 0.0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    path.with_suffix(".txt").write_text(LINE)
    return str(path)


def test_the_take_each_voice_scorer_asks_for_beats_its_opposite(tmp_path):
    import numpy as np

    # slow, deep, sing-song, falling at the close, without gaps, at one level
    wanted = _take(tmp_path / "wanted.wav", 3.0,
                   lambda t: 95 * 2 ** ((3 * np.sin(2 * np.pi * 1.5 * t) - 5 * (t > 2.6)) / 12),
                   lambda t: 0 * t, 0.0)
    # hurried, high, flat, rising at the close, with gaps, its level jumping 16 dB
    opposite = _take(tmp_path / "opposite.wav", 1.8, lambda t: 125 * 2 ** (6 * (t > 1.5) / 12),
                     lambda t: np.where((t % 0.4) < 0.2, 0.0, -16.0), 0.4)
    for name, fn in eval_scorers.EVAL_SCORERS["voice"][1].items():
        assert 0.0 <= fn(opposite) < fn(wanted) <= 1.0, name


def test_the_simulated_artist_judges_with_the_studios_scorer_only_when_asked(files):
    import eval_suite

    class Studio:
        calls = []

        def score(self, medium, candidates, scorers):
            self.calls.append((medium, scorers))
            return [0.25] * len(candidates)

    poem = types.SimpleNamespace(files={}, path=files["haiku"])
    studio = Studio()
    own = eval_suite.artist(studio, "text", "brief", builtin=False)([poem])
    assert own == [eval_scorers.brief(files["haiku"])] and not studio.calls  # the eval scorer, not the studio's
    assert eval_suite.artist(studio, "text", "syllables", builtin=True)([poem]) == [0.25]
    assert studio.calls == [("text", ["syllables"])]


def test_the_likeness_artist_stars_two_of_the_first_batch_and_judges_every_later_one_against_them():
    import numpy as np

    import eval_suite

    class Medium:
        def embed(self, handle, candidates):
            return np.array([c.features for c in candidates], dtype=float)

    class Studio:
        def medium(self, name):
            return Medium()

        def handle(self, medium, model):
            return None

    rng = np.random.default_rng(5)
    first = [types.SimpleNamespace(model="m", features=rng.normal(size=4)) for _ in range(8)]
    judge = eval_suite.artist(Studio(), "image", "likeness", builtin=True, seed=3)
    scores = np.array(judge(first))
    starred = np.flatnonzero(np.isclose(scores, 1.0))
    assert len(starred) == 2 and (scores <= 1.0 + 1e-9).all()  # the two stars, each its own best match
    again = eval_suite.artist(Studio(), "image", "likeness", builtin=True, seed=3)(first)
    assert np.allclose(again, scores)  # the seed picks the same two
    star = first[starred[0]].features
    later = [types.SimpleNamespace(model="m", features=2 * star), types.SimpleNamespace(model="m", features=-star)]
    close, far = judge(later)  # judged against the first batch's stars, not two of this batch
    assert np.isclose(close, 1.0) and far < max(scores[np.setdiff1d(np.arange(8), starred)])


def _picture(path: Path, ground, shapes) -> str:
    """A 64 px picture: a ground colour and filled discs (centre x, centre y, radius, colour), colours 0-255."""
    import numpy as np
    from PIL import Image

    rgb = np.empty((64, 64, 3), dtype=np.uint8)
    rgb[:] = ground
    ys, xs = np.mgrid[:64, :64]
    for cx, cy, r, colour in shapes:
        rgb[(xs - cx) ** 2 + (ys - cy) ** 2 <= r * r] = colour
    Image.fromarray(rgb).save(path)
    return str(path)


@pytest.mark.parametrize("ground", [(235, 235, 230), (230, 90, 190), (120, 60, 200)])  # paper, pink, violet
def test_the_drawing_is_read_against_its_ground_whatever_the_grounds_colour(tmp_path, ground):
    scorers = eval_scorers.EVAL_SCORERS["image"][1]
    olive, orange = (120, 130, 40), (240, 140, 30)
    middle = _picture(tmp_path / "middle.png", ground, [(32, 32, 8, olive)])
    corner = _picture(tmp_path / "corner.png", ground, [(12, 12, 8, olive)])
    big = _picture(tmp_path / "big.png", ground, [(32, 32, 26, olive)])
    three = _picture(tmp_path / "three.png", ground, [(14, 14, 6, olive), (48, 20, 6, olive), (30, 48, 6, olive)])
    warm = _picture(tmp_path / "warm.png", ground, [(32, 32, 8, orange)])
    assert scorers["centred"](middle) > 0.95 > 0.3 > scorers["centred"](corner)
    assert scorers["airy"](middle) > 0.9 > 0.5 > scorers["airy"](big)  # a small drawing leaves the ground bare
    assert scorers["three_things"](three) == 1.0 > scorers["three_things"](middle)
    assert scorers["warm"](warm) > scorers["warm"](middle)
