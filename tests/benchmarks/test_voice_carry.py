import json
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import voice_carry  # noqa: E402


def take(tmp_path, name, hz, durations):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"ids": list(range(len(hz))), "durations": durations, "pitch_hz": hz}))
    return types.SimpleNamespace(files={"json": str(path)})


def test_a_reading_leans_low_slow_and_wide_by_its_alignment(tmp_path):
    plain = voice_carry.reading(take(tmp_path, "plain", [200.0] * 5, [5] * 5))
    deep = voice_carry.reading(take(tmp_path, "deep", [100.0] * 5, [5] * 5))
    slow = voice_carry.reading(take(tmp_path, "slow", [200.0] * 5, [10] * 5))
    wide = voice_carry.reading(take(tmp_path, "wide", [100.0, 150.0, 200.0, 300.0, 400.0], [5] * 5))
    low, frames, span = (voice_carry.PARTS[p] for p in ("low", "slow", "span"))
    assert deep[low] - plain[low] == 12.0  # an octave lower leans 12 semitones further toward low
    assert slow[frames] == 2 * plain[frames]
    assert plain[span] == 0.0 and wide[span] > 20.0
