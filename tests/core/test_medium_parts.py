"""A medium is one folder: a package whose __init__ declares only what it is, and whose parts (model,
generate, scorers, features, export) the Medium base class finds by name on first use."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest

from studio import media
from studio.engine import Studio

PARTS = {
    "__init__.py": '''
        from studio.medium import Medium

        class DotsMedium(Medium):
            name = "dots"
            main_ext = "txt"
            default_scorer = "count"
            export_formats = {"lines": "the kept dots, one JSON line each"}

            def default_model(self):
                return "dots-model"
        ''',
    "model.py": '''
        LOADED = []

        def load(model, device=None):
            LOADED.append(model)
            return {"model": model}
        ''',
    "generate.py": '''
        from studio.medium import Generated

        def generate(handle, prompt, seeds, params, adapter=None, strength=1.0):
            return [Generated(seed=s, files={"txt": ("." * (s % 5 + 1)).encode()}, text="." * (s % 5 + 1))
                    for s in seeds]
        ''',
    "scorers.py": '''
        from pathlib import Path

        def count(ctx):
            return lambda cs: [len(Path(c.path).read_text()) / 5 for c in cs]

        SCORERS = {"count": count}
        ''',
    "features.py": '''
        import numpy as np
        from pathlib import Path

        def embed(candidates):
            return np.array([[len(Path(c.path).read_text()), 1.0] for c in candidates])
        ''',
    "export.py": '''
        import json
        from pathlib import Path

        def export(version, fmt, out_dir, curated):
            out = out_dir / "dots.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(json.dumps({"dots": Path(c.path).read_text()}) + "\\n" for c in curated))
            return [out]
        ''',
}


@pytest.fixture
def dots(tmp_path, monkeypatch):
    package = tmp_path / "plugins" / "dots_medium"
    package.mkdir(parents=True)
    for name, text in PARTS.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    media.register("dots", "dots_medium:DotsMedium")
    yield package
    media._extra.pop("dots", None)
    media._instances.pop("dots", None)
    for module in [m for m in sys.modules if m.startswith("dots_medium")]:
        del sys.modules[module]


def test_a_medium_folder_of_parts_runs_generate_curate_variety_and_export(workspace, dots, tmp_path):
    studio = Studio(workspace)
    cands = studio.generate("dots", "some dots", n=10)
    assert [open(c.path).read() for c in cands] == ["." * (s % 5 + 1) for s in range(10)]
    assert sys.modules["dots_medium.model"].LOADED == ["dots-model"]
    result = studio.curate("dots", threshold=0.8, temperature=0.0, keep="all")
    assert sorted(open(studio.store.candidate(i).path).read() for i in result["accepted"]) == ["....", "....",
                                                                                            ".....", "....."]
    assert studio.medium("dots").diversity(None, cands) > 0
    written = studio.export("dots", "base", "lines", tmp_path / "out")
    lines = (tmp_path / "out" / "dots.jsonl").read_text().splitlines()
    assert written and sorted(json.loads(line)["dots"] for line in lines) == ["....", "....", ".....", "....."]


def test_a_missing_part_names_its_module(dots):
    from studio.media import get

    with pytest.raises(ModuleNotFoundError, match="dots_medium.tune"):
        get("dots").tune_task(None, [], {}, None)
