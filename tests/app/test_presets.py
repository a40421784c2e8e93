"""Presets: every shipped one loads and fits its medium; a broken one is one clear sentence."""
from __future__ import annotations

import pytest

from studio import media, presets
from studio.errors import StudioError

SHIPPED_MEDIA = ("image", "text", "music")


@pytest.mark.parametrize("medium", SHIPPED_MEDIA)
def test_at_least_two_presets_per_medium_load(medium):
    names = presets.names(medium)
    assert len(names) >= 2, names
    for name in names:
        preset = presets.load(medium, name)
        assert preset.render_prompt() and "{subject}" not in preset.render_prompt()
        assert 0 <= preset.threshold <= 1 and preset.temperature >= 0


@pytest.mark.parametrize("medium", SHIPPED_MEDIA)
def test_presets_use_the_mediums_settings_and_built_in_scorers(medium):
    try:
        the_medium = media.get(medium)
    except StudioError:
        pytest.skip(f"the {medium} medium has not landed")
    for name in presets.names(medium):
        preset = presets.load(medium, name)
        the_medium.validate_params(preset.params)  # raises on an unknown setting
        unknown = [s.name for s in preset.scorers if s.name not in the_medium.scorers()]
        assert not unknown, f"{medium}-{name}: {unknown} are not built-in scorers"


def test_template_specs_and_options(tmp_path):
    (tmp_path / "fake-warm.toml").write_text(
        'prompt = "a {subject} colour"\nsubject = "warm"\n[[scorers]]\nname = "bright"\nweight = 2\n'
        'options = { hue = "red" }\n[tune]\nsteps = 5\nslow = 0.1\n')
    preset = presets.load("fake", "warm", tmp_path)
    assert presets.names("fake", tmp_path) == ["warm"]
    assert preset.render_prompt() == "a warm colour" and preset.render_prompt("cold") == "a cold colour"
    assert preset.scorer_specs() == ["bright=2"] and preset.scorer_options() == {"bright": {"hue": "red"}}
    assert preset.tune == {"steps": 5, "slow": 0.1} and preset.n == 8


@pytest.mark.parametrize("text, message", [
    ('prompt = "x"\ncolour = 1\n', "unknown keys: colour"),
    ('subject = "x"\n', "needs a prompt"),
    ('prompt = "x"\nn = 0\n', "n = 0"),
    ('prompt = "x"\n[rule]\nthreshold = 2\n', "threshold 2.0"),
    ('prompt = "x"\n[rule]\ntemperature = -1\n', "temperature -1.0"),
    ('prompt = "x"\n[tune]\nlr = 5\n', "tune.lr"),
    ('prompt = "x"\n[[scorers]]\nweight = 1\n', "needs a name"),
    ('prompt = "x"\n[[scorers]]\nname = "a"\nweight = 0\n', "add up to zero"),
    ('prompt = "x\n', "not valid TOML"),
])
def test_broken_presets_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "fake-bad.toml").write_text(text)
    with pytest.raises(StudioError, match=message):
        presets.load("fake", "bad", tmp_path)


def test_missing_preset_names_the_available_ones(tmp_path):
    (tmp_path / "fake-one.toml").write_text('prompt = "x"\n')
    with pytest.raises(StudioError, match="There is no fake preset 'two'; available: one."):
        presets.load("fake", "two", tmp_path)


def test_image_presets_for_the_embedded_default_use_only_words_it_knows():
    """The embedded default knows shapes, colours, counts, sizes, positions and backgrounds; a preset in other
    words must say it is for a real model (else it draws grey blobs and keeps nothing)."""
    import re

    from studio.media.image.scenes import vocabulary

    known = set(vocabulary())
    for name in presets.names("image"):
        preset = presets.load("image", name)
        words = set(re.findall(r"[a-z]+", preset.render_prompt().lower()))
        if "real model" not in preset.description:
            assert words <= known, f"image-{name} uses words the embedded default never saw: {words - known}"


@pytest.mark.parametrize("table, message", [
    ('[tune]\nconv = "maybe"\n', r"The image tune setting 'conv' must be true or false \(or empty\), not 'maybe' \(the preset image-bad.toml\)\."),
    ('[tune]\nrank = 4\nsharpen = true\n', r"Unknown image tune setting 'sharpen'.*\(the preset image-bad.toml\)\."),
    ('[params]\nsteps = 0\n', r"The image setting 'steps' must be a whole number from 1 to 500, not 0 \(the preset"),
])
def test_a_presets_settings_are_checked_against_its_medium_when_it_is_read(tmp_path, table, message):
    (tmp_path / "image-bad.toml").write_text('prompt = "a circle"\n' + table)
    with pytest.raises(StudioError, match=message):
        presets.load("image", "bad", tmp_path)
    (tmp_path / "image-good.toml").write_text('prompt = "a circle"\n[tune]\nconv = true\nconv_alpha = 0.5\n')
    assert presets.load("image", "good", tmp_path).tune == {"conv": True, "conv_alpha": 0.5}
