"""Tune on kept takes, compare on a held-out line, and the three exports read back by plain tools."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from studio.errors import StudioError
from studio.media.voice.phonemes import espeak_available

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
FAST = {"vocoder_iterations": 4}


@pytest.fixture(scope="module")
def tuned(tiny_voice, tmp_path_factory):
    """A studio whose v1 learned from three slow takes of one line (made once for the module)."""
    from studio.engine import Studio

    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("voice-tuned")
        patch.setenv("STUDIO_LAUNCHER", "python")
        patch.setenv("STUDIO_CACHE", str(root / "cache"))
        yield _tuned(Studio(root / "workspace"), tiny_voice)


def _tuned(studio, tiny_voice):
    studio.use_model("voice", str(tiny_voice))
    takes = studio.generate("voice", "slow: Good evening, Anna.", n=3, params=FAST)
    studio.curate("voice", accept=[c.id for c in takes])
    studio.tune("voice", steps=4, settings={"batch_size": 2})
    return studio, takes, studio.store.version("voice", "v1")


def test_tune_learns_from_the_kept_takes_and_compare_runs_on_a_new_line(tuned):
    studio, takes, version = tuned
    assert version.name == "v1" and sorted(version.curated) == sorted(c.id for c in takes)
    result = studio.compare("voice", after="v1", prompt="Where is the station?", n=2, scorers=["pace"], params=FAST)
    for side in ("before", "after"):
        assert 0 <= result[side]["mean_score"] <= 1 and result[side]["copies"] == 0.0
    assert result["after"]["candidates"] != result["before"]["candidates"]


def test_the_adapter_loads_with_stock_peft(tuned, tiny_voice, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from studio.media.voice.network import TinyVoice, VoiceConfig

    studio, _, _ = tuned
    files = [Path(p) for p in studio.export("voice", "v1", "peft", tmp_path / "adapter")["files"]]
    assert {p.name for p in files} >= {"adapter_config.json", "adapter_model.safetensors"}
    base = TinyVoice(VoiceConfig.load(tiny_voice))
    base.load_state_dict(load_file(str(tiny_voice / "model.safetensors")))
    model = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    ids, lengths = torch.tensor([[1, 0, 40, 0, 50, 0, 2]]), torch.tensor([7])
    x, mask = model.encode(ids, lengths)
    assert torch.isfinite(model.predict(x, mask)[0]).all()
    assert any("lora_A" in name for name, _ in model.named_parameters())


def test_ljspeech_export_reads_back_with_csv_and_soundfile(tuned, tmp_path):
    studio, takes, _ = tuned
    files = studio.export("voice", "v1", "ljspeech", tmp_path / "lj")["files"]
    with open(tmp_path / "lj" / "metadata.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE))
    assert sorted(r[0] for r in rows) == sorted(c.id for c in takes)
    for name, text, normalised in rows:
        assert text == normalised == "Good evening, Anna."
        audio, rate = soundfile.read(tmp_path / "lj" / "wavs" / f"{name}.wav")
        assert rate == 22050 and len(audio) > 0 and np.abs(audio).max() > 0.1
    assert len(files) == 4
    with pytest.raises(StudioError, match="not empty"):
        studio.export("voice", "v1", "ljspeech", tmp_path / "lj")


def test_hf_datasets_export_is_an_audio_folder(tuned, tmp_path):
    """The audio-folder layout: metadata.csv with a file_name column beside the WAVs.  (datasets' own
    audio loader needs torchcodec and FFmpeg, which this machine lacks, so the table is read as CSV.)"""
    import datasets

    studio, takes, _ = tuned
    studio.export("voice", "v1", "hf-datasets", tmp_path / "hf")
    data = datasets.load_dataset("csv", data_files=str(tmp_path / "hf" / "metadata.csv"), split="train")
    assert len(data) == 3 and set(data["transcription"]) == {"Good evening, Anna."}
    assert sorted(data["file_name"]) == sorted(f"{c.id}.wav" for c in takes)
    for name in data["file_name"]:
        audio, rate = soundfile.read(tmp_path / "hf" / name)
        assert rate == 22050 and len(audio) > 0


def test_unknown_format_and_base_adapter_are_one_sentence(tuned, tmp_path):
    studio, _, _ = tuned
    with pytest.raises(StudioError, match="Unknown voice export format 'mp3'"):
        studio.export("voice", "v1", "mp3", tmp_path / "x")


def _takes_on_disk(root: Path, medium, handle, prompt: str, seeds, params) -> list:
    from voice_helpers import candidate_from_files

    root.mkdir(parents=True, exist_ok=True)
    return [candidate_from_files(root, f"t{g.seed}", prompt, g.files, seed=g.seed)
            for g in medium.generate(handle, prompt, seeds, params)]


def _base_reading(handle, ids):
    """The base network's frames and normalised pitch per id for ``ids`` (what speak() moves by the draws)."""
    import torch

    net = handle.model
    with torch.no_grad():
        x, mask = net.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        log_durations, pitch = net.predict(x, mask)
    return (torch.exp(log_durations[0]) - 1).clamp(min=0).numpy(), pitch[0].numpy()


def test_a_take_keeps_its_draws_and_the_tune_learns_its_rhythm_with_the_rest_divided_out(tiny_voice, tmp_path):
    """The take's alignment holds the seed's draws; the predictors' targets are the base's reading moved by
    the line's own pace, shift and range and its rhythm: the per-phoneme pitch jitter and the settings' and
    style's centre, which generation draws again, are out of them (as read, they are not)."""
    import json

    from studio.media import get
    from studio.media.voice.speak import SEMITONE
    from studio.media.voice.tune import reading_targets

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    config = handle.model.config
    params = medium.validate_params({**FAST, "pitch": 2.0, "pitch_range": 1.5})
    takes = _takes_on_disk(tmp_path, medium, handle, "slow: Hello there, my good friend.", [0, 1, 2], params)
    for take in takes:
        alignment = json.loads(Path(take.files["json"]).read_text())
        draws, ids = alignment["draws"], alignment["ids"]
        assert draws["centre"] == {"pace": 1.25, "shift": 2.0, "range": 1.5}
        assert len(draws["rhythm"]) == len(draws["intonation"]) == len(ids)
        base_frames, base_pitch = _base_reading(handle, ids)
        durations = np.asarray(alignment["durations"], dtype=np.float64)
        pitch = (np.log(alignment["pitch_hz"]) - config.pitch_mean) / config.pitch_std
        frames_target, pitch_target, known = reading_targets(durations, pitch, draws, config)
        assert known == 1.0
        # the line's own draws, around the centre: what is left to learn
        pace = draws["pace"] / 1.25
        # at the centre (range 1.5, shift 2), this pitch reads the take's line-wide pitch back
        expected_pitch = (base_pitch * draws["range"] + (draws["shift"] - 2.0) * SEMITONE / config.pitch_std) / 1.5
        long = durations >= 3  # rounding to whole frames blurs the shortest
        # the rhythm stays in the duration target (which phonemes the reading lengthened), the centre does not
        assert np.allclose(frames_target, np.log1p(durations / 1.25), atol=1e-5)
        rhythm = np.asarray(draws["rhythm"])
        divided = np.abs(np.log(durations * np.exp(-rhythm) / 1.25 / (base_frames * pace)))[long]
        with_rhythm = np.abs(np.log((np.exp(frames_target) - 1) / (base_frames * pace)))[long]
        assert divided.mean() < 0.08 and with_rhythm.mean() > divided.mean()
        assert np.abs(pitch_target - expected_pitch).max() < 0.02
        assert np.abs(pitch - expected_pitch).mean() > 0.1
        # intonation_as_read: which words the reading raised or lowered stays in the pitch target too
        as_read = reading_targets(durations, pitch, draws, config, intonation_as_read=True)
        assert np.allclose(as_read[0], frames_target) and as_read[2] == 1.0
        intonation = np.asarray(draws["intonation"]) / 1.5
        assert np.abs(as_read[1] - (expected_pitch + intonation)).max() < 0.02
        assert np.abs(intonation).mean() > 0.05


def test_a_take_without_draws_is_learned_as_read_and_a_monotone_one_leaves_pitch_out():
    from studio.media.voice.network import VoiceConfig
    from studio.media.voice.tune import reading_targets

    config = VoiceConfig()
    durations, pitch = np.array([0, 4, 6]), np.array([0.1, -0.2, 0.3])
    frames, target, known = reading_targets(durations, pitch, None, config)
    assert np.allclose(frames, np.log1p(durations)) and np.allclose(target, pitch) and known == 1.0
    monotone = {"pace": 1.0, "shift": 0.0, "range": 0.0, "centre": {"pace": 1.0, "shift": 0.0, "range": 0.0},
                "rhythm": [0.0, 0.1, -0.1], "intonation": [0.0, 0.0, 0.0]}
    assert reading_targets(durations, pitch, monotone, config)[2] == 0.0
    with pytest.raises(StudioError, match="do not match its phonemes"):
        reading_targets(durations, pitch, {**monotone, "rhythm": [0.0]}, config)


def test_a_tune_moves_the_centre_to_the_kept_readings_not_the_style_again(tiny_voice, tmp_path):
    """Kept takes that drew a slow pace for their line, read with the style 'slow': the tuned voice reads a
    new line about as much slower as the kept draws were, not 'slow' twice over."""
    import json
    import math

    import torch

    from studio.media import get
    from studio.media.voice.phonemes import text_to_ids

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    params = medium.validate_params(FAST)
    takes = _takes_on_disk(tmp_path, medium, handle, "slow: The garden was quiet after the rain.", range(12), params)
    noise = {t.id: math.log(json.loads(Path(t.files["json"]).read_text())["draws"]["pace"] / 1.25) for t in takes}
    kept = sorted(takes, key=lambda t: -noise[t.id])[:4]
    kept_pace = float(np.mean([noise[t.id] for t in kept]))
    assert kept_pace > 0.05
    task = medium.tune_task(handle, kept, {"batch_size": 4, "rank": 4, "seed": 0}, None)
    optimiser = torch.optim.Adam(task.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for step in range(80):
        loss = task.loss(step, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    task.peft.eval()
    ids = text_to_ids("Where is the nearest station?")
    batch, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
    with torch.no_grad():
        tuned = task.peft.predict(*task.peft.encode(batch, lengths))[0][0]
        with task.peft.disable_adapter():
            base = task.peft.predict(*task.peft.encode(batch, lengths))[0][0]
    moved = float(torch.log((torch.exp(tuned) - 1).clamp(min=0.1) / (torch.exp(base) - 1).clamp(min=0.1)).mean())
    assert abs(moved - kept_pace) < 0.06 and moved < kept_pace + math.log(1.25) - 0.1


def _fit(task, steps: int, lr: float = 1e-2) -> None:
    import torch

    optimiser = torch.optim.Adam(task.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    for step in range(steps):
        loss = task.loss(step, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _pace_moved(task, line: str) -> float:
    """Mean log change of the frames per phoneme the tuned predictors give a new line, against the base."""
    import torch

    from studio.media.voice.phonemes import text_to_ids

    task.peft.eval()
    ids = text_to_ids(line)
    batch, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
    with torch.no_grad():
        tuned = task.peft.predict(*task.peft.encode(batch, lengths))[0][0]
        with task.peft.disable_adapter():
            base = task.peft.predict(*task.peft.encode(batch, lengths))[0][0]
    return float(torch.log((torch.exp(tuned) - 1).clamp(min=0.1) / (torch.exp(base) - 1).clamp(min=0.1)).mean())


def _slowest_first(root: Path, medium, handle, count: int) -> list:
    """``count`` takes of one line on disk, the one that drew the slowest pace first."""
    import json

    takes = _takes_on_disk(root, medium, handle, "The garden was quiet after the rain.", range(count),
                           medium.validate_params(FAST))
    return sorted(takes, key=lambda t: -json.loads(Path(t.files["json"]).read_text())["draws"]["pace"])


def test_kto_learns_the_kept_readings_against_the_dropped_ones_from_the_starting_model(tiny_voice, tmp_path):
    """kto reads a take's reading as log pi (minus its duration and pitch errors): at the start every reward
    is 0 (the reference is the starting model), and a tune whose kept takes drew slow and whose dropped
    ones drew fast reads a new line slower, further than the kept draws alone take sft (it also moves away
    from the dropped), and a higher beta keeps it closer to the start."""
    import json
    import math

    import torch

    from studio.media import get

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    params = medium.validate_params(FAST)
    takes = _takes_on_disk(tmp_path, medium, handle, "The garden was quiet after the rain.", range(12), params)
    noise = {t.id: math.log(json.loads(Path(t.files["json"]).read_text())["draws"]["pace"]) for t in takes}
    ranked = sorted(takes, key=lambda t: -noise[t.id])
    kept, dropped = ranked[:3], ranked[3:]
    kept_pace = float(np.mean([noise[t.id] for t in kept]))
    settings = {"batch_size": 4, "rank": 4, "seed": 0, "objective": "kto", "beta": 100.0}
    task = medium.tune_task(handle, kept, settings, None, dropped=dropped)
    assert task.preference is not None and len(task.rows) == 12
    assert task.reward_log is task.preference.reward_log  # each step's rewards reach its log
    with torch.no_grad():
        assert torch.allclose(task.log_probs(torch.arange(12)), task.preference.reference)
    _fit(task, 40, 5e-3)
    kto_moved = _pace_moved(task, "Where is the nearest station?")
    sft = medium.tune_task(handle, kept, {**settings, "objective": "sft"}, None, dropped=dropped)
    assert sft.preference is None and len(sft.rows) == 3
    _fit(sft, 40, 5e-3)
    sft_moved = _pace_moved(sft, "Where is the nearest station?")
    assert abs(sft_moved - kept_pace) < 0.06
    assert kto_moved > sft_moved + 0.02
    closer = medium.tune_task(handle, kept, {**settings, "beta": 3000.0}, None, dropped=dropped)
    _fit(closer, 40, 5e-3)
    closer_moved = _pace_moved(closer, "Where is the nearest station?")
    assert 0 < closer_moved < kto_moved


def test_dpo_learns_each_kept_reading_against_a_dropped_one_of_its_line(tiny_voice, tmp_path):
    """dpo pairs every kept take with every dropped take of the same line; from a zero margin at the start it reads
    a new line slower when the kept takes drew slow and the dropped ones fast, like kto."""
    import math

    import torch

    from studio.media import get

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    ranked = _slowest_first(tmp_path, medium, handle, 8)
    other = _takes_on_disk(tmp_path / "other", medium, handle, "Where is the nearest station?", range(2),
                           medium.validate_params(FAST))
    settings = {"batch_size": 4, "rank": 4, "seed": 0, "objective": "dpo", "beta": 100.0}
    task = medium.tune_task(handle, ranked[:3], settings, None, dropped=[*ranked[3:], *other])
    assert task.preference.pairs == [(i, 3 + j) for i in range(3) for j in range(5)]  # the other line's: unpaired
    assert float(task.loss(0, torch.Generator().manual_seed(0))) == pytest.approx(math.log(2), abs=1e-5)
    before = _pace_moved(task, "Where is the nearest station?")
    _fit(task, 40, 5e-3)
    assert _pace_moved(task, "Where is the nearest station?") > before + 0.02


def test_other_lines_carry_each_takes_reading_to_the_voices_own_lines(tiny_voice, tmp_path):
    """``other_lines``: each take's line-wide reading also on the voice's own training lines, as the starting model
    reads them moved by the take's pace, shift and range (no per-phoneme noise); the kept takes' rows stay first
    (their own, then carried), every reward starts at 0, and a tune on slow keeps reads those lines slower too.
    With sft it is one sentence."""
    import json

    import torch

    from studio.media import get
    from studio.media.voice.lines import training_lines
    from studio.media.voice.phonemes import text_to_ids
    from studio.media.voice.settings import VoiceTune
    from studio.media.voice.speak import SEMITONE

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    ranked = _slowest_first(tmp_path, medium, handle, 8)
    settings = {"batch_size": 4, "rank": 4, "seed": 0, "objective": "kto", "beta": 100.0, "other_lines": 2}
    task = medium.tune_task(handle, ranked[:3], settings, None, dropped=ranked[3:])
    assert len(task.rows) == 8 * 3 and task.preference.kept == 3 * 3
    line = training_lines(2)[1]
    frames, pitch = _base_reading(handle, text_to_ids(line))
    draws = json.loads(Path(ranked[0].files["json"]).read_text())["draws"]
    row = task.rows[4]  # the first kept take's reading on the second line
    np.testing.assert_allclose(row[4], np.log1p(frames * draws["pace"] / draws["centre"]["pace"]), atol=1e-5)
    shift = (draws["shift"] - draws["centre"]["shift"]) * SEMITONE / handle.model.config.pitch_std
    np.testing.assert_allclose(row[5], (pitch * draws["range"] + shift) / draws["centre"]["range"], atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(task.log_probs(torch.arange(24)), task.preference.reference)
    _fit(task, 40, 5e-3)
    assert _pace_moved(task, line) > 0.02 and _pace_moved(task, "Where is the nearest station?") > 0.02
    with pytest.raises(StudioError, match="other_lines carries"):
        VoiceTune.parse({"objective": "sft", "other_lines": 2})


def test_a_tune_from_a_tuned_version_is_anchored_at_its_own_beta(tiny_voice, tmp_path):
    """The next round's kto starts from the last round's adapter (its reference is the tuned reading, not the
    base's) and is anchored at beta times tuned_beta_scale; a tune from the base keeps beta itself."""
    import torch

    from studio.media import get
    from studio.media.voice.settings import VoiceTune

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    takes = _takes_on_disk(tmp_path, medium, handle, "The garden was quiet after the rain.", range(8),
                           medium.validate_params(FAST))
    settings = {**VoiceTune().to_dict(), "batch_size": 4, "rank": 4, "seed": 0, "tuned_beta_scale": 3.0}
    first = medium.tune_task(handle, takes[:2], settings, None, dropped=takes[2:])
    assert first.preference.beta == settings["beta"]
    _fit(first, 10, 5e-2)
    first.save(tmp_path / "v1")
    with torch.no_grad():
        tuned_reading = first.log_probs(torch.arange(8))
    second = medium.tune_task(handle, takes[:2], settings, str(tmp_path / "v1"), dropped=takes[2:])
    assert second.preference.beta == 3.0 * settings["beta"]
    assert torch.allclose(second.preference.reference, tuned_reading, atol=1e-5)
    assert not torch.allclose(second.preference.reference, first.preference.reference, atol=1e-3)


def test_kto_is_the_built_in_voices_objective(tmp_path):
    from types import SimpleNamespace

    from studio.media.voice.tune import build_task

    for kind, name in (("csm", "CSM"), ("speecht5", "SpeechT5")):
        with pytest.raises(StudioError, match=f"built-in voice's; {name} tunes with objective sft"):
            build_task(SimpleNamespace(kind=kind), ["kept"], {"objective": "kto"}, None, (), ["dropped"])


def test_the_kept_sets_variety_is_measured_within_a_line(tiny_voice, tmp_path):
    """A compare's side is one line's takes, so the bar it is held to is the kept takes' variety within each
    line, not across lines of different lengths; a kept set with no line twice falls back to the whole set's."""
    from studio.media import get

    medium = get("voice")
    handle = medium.load(str(tiny_voice))
    params = medium.validate_params(FAST)
    short = _takes_on_disk(tmp_path / "a", medium, handle, "Yes.", [1, 2, 3], params)
    long = _takes_on_disk(tmp_path / "b", medium, handle, "slow: The garden was quiet after the long rain.",
                          [4, 5, 6], params)
    within = (medium.diversity(handle, short) + medium.diversity(handle, long)) / 2
    assert medium.kept_variety(handle, short + long) == pytest.approx(within)
    assert medium.diversity(handle, short + long) > within
    assert medium.kept_variety(handle, [short[0], long[0]]) == medium.diversity(handle, [short[0], long[0]])
