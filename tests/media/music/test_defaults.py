"""The recipe of the embedded default runs end to end (tiny settings) and its output loads."""
import json

from studio.media import get
from studio.media.music import defaults


def test_train_writes_a_loadable_safetensors_model(tmp_path):
    figures = defaults.train(tmp_path / "m", "cpu", seed=0, pieces=210, steps=3, log=lambda line: None)
    assert figures["kind"] == "symbolic" and figures["steps"] == 3
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "studio_music.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    assert json.loads((tmp_path / "m" / "studio_music.json").read_text())["max_bars"] == defaults.MAX_BARS
    medium = get("music")
    handle = medium.load(str(tmp_path / "m"), "cpu")
    gens = medium.generate(handle, "a march", [0, 1], medium.validate_params({"bars": 2}))
    assert [list(g.files) for g in gens] == [["mid", "wav", "png"]] * 2


def test_shipped_default_is_small():
    from studio.media.music import ASSETS

    folder = ASSETS
    if folder.exists():
        assert sum(p.stat().st_size for p in folder.iterdir()) <= 20 * 2 ** 20
