"""A medium is one folder: a plugin installed from outside the package shows in the CLI and as a tab, and
the CLI and the app name no medium except through the registry."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio import media

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = '''
"""A plugin medium: sketches as words, a whole medium in one small file (generate, score, embed, export)."""
import dataclasses
import json
from pathlib import Path
from typing import ClassVar

from studio.medium import Generated, Medium
from studio.settings import Settings, setting

WORDS = ["line", "curve", "dot", "hatch", "smudge", "spiral", "grid", "wave"]


@dataclasses.dataclass
class SketchGenerate(Settings):
    owner: ClassVar[str] = "sketch"
    strokes: int = setting(3, "strokes per sketch", min=1, max=12, label="Strokes")


class SketchMedium(Medium):
    name = "sketch"
    label = "Sketchbook"
    order = 5
    placeholder = "What to sketch, e.g. a quiet harbour"
    main_ext = "txt"
    default_scorer = "busy"
    export_formats = {"list": "the kept sketches, one JSON line each"}
    generate_settings = SketchGenerate

    def default_model(self):
        return "words"

    def load(self, model, device=None):
        return WORDS

    def generate(self, handle, prompt, seeds, params, adapter=None, strength=1.0):
        import random

        out = []
        for seed in seeds:
            rng = random.Random(seed)
            text = " ".join(rng.choice(handle) for _ in range(params["strokes"]))
            out.append(Generated(seed=seed, files={"txt": text.encode()}, text=text))
        return out

    def scorers(self):
        return {"busy": lambda ctx: (lambda cs: [len(set(Path(c.path).read_text().split())) / 12 for c in cs])}

    def embed(self, handle, candidates):
        import numpy as np

        return np.array([[Path(c.path).read_text().count(w) for w in WORDS] for c in candidates], float) + 1e-3

    def tune_task(self, handle, examples, settings, parent_adapter, prior=()):
        from studio.errors import StudioError

        raise StudioError("Sketches do not tune.")

    def export(self, handle, version, fmt, out_dir, curated):
        out = Path(out_dir) / "sketches.jsonl"
        out.write_text("".join(json.dumps({"prompt": c.prompt, "sketch": Path(c.path).read_text()}) + "\\n"
                               for c in curated))
        return [out]
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The plugin built and installed (pip, no network) into a folder outside the package, as a user would."""
    source = tmp_path_factory.mktemp("plugin-src")
    (source / "studio_sketch").mkdir()
    (source / "studio_sketch" / "__init__.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "studio-sketch"
        version = "0.1"
        [project.entry-points."studio.media"]
        sketch = "studio_sketch:SketchMedium"
    '''))
    target = tmp_path_factory.mktemp("plugin-site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target


def studio_with(plugin: Path, workspace: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")]),
           "STUDIO_HOME": str(workspace)}
    return subprocess.run([sys.executable, "-m", "studio", *argv], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_a_plugin_medium_installed_outside_the_package_is_in_the_cli_and_a_tab(plugin_path, tmp_path):
    ws = tmp_path / "ws"
    helped = studio_with(plugin_path, ws, "generate", "--help")
    assert "sketch" in helped.stdout and helped.returncode == 0
    made = studio_with(plugin_path, ws, "generate", "sketch", "--prompt", "a harbour", "-n", "4", "--param",
                       "strokes=5", "--json")
    assert made.returncode == 0, made.stderr
    candidates = json.loads(made.stdout)["candidates"]
    assert len(candidates) == 4 and all(len(Path(c["path"]).read_text().split()) == 5 for c in candidates)
    kept = studio_with(plugin_path, ws, "curate", "sketch", "--scorer", "busy", "--threshold", "0", "--json")
    assert kept.returncode == 0 and len(json.loads(kept.stdout)["accepted"]) == 4, kept.stderr
    settings = studio_with(plugin_path, ws, "settings", "sketch", "--json")
    assert json.loads(settings.stdout)["generate"][0]["name"] == "strokes"
    bad = studio_with(plugin_path, ws, "generate", "sketch", "--prompt", "x", "--param", "strokes=40")
    assert bad.returncode == 2 and bad.stderr.startswith("error: The sketch setting 'strokes' must be a whole number")
    tabs = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        import gradio as gr
        from studio.app import build_app
        from studio.engine import Studio
        app = build_app(Studio(__import__("sys").argv[1]), names=["sketch", "text"])
        print([b.label for b in app.blocks.values() if isinstance(b, gr.Tab) and b.elem_id and
               b.elem_id.startswith("tab-")])
    '''), str(ws)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(plugin_path)})
    assert tabs.returncode == 0, tabs.stderr[-2000:]
    assert "'Sketchbook'" in tabs.stdout and "'Text'" in tabs.stdout and "'History'" in tabs.stdout


def test_the_cli_and_the_app_name_no_medium():
    """Only the registry knows the media: no string in studio/cli.py or studio/app/ is a medium's name, nothing
    there imports a medium's package or class (the page's card kinds are picture, words and sound, read from a
    candidate's files)."""
    names = set(media.available()) | {"voice"}
    files = [ROOT / "studio" / "cli.py", *(ROOT / "studio" / "app").glob("*.py")]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in names:
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.ImportFrom) and any(f"media.{n}" in (node.module or "") for n in names):
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
            identifier = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) \
                else None
            if identifier and any(identifier.lower() == f"{n}medium" for n in names):
                found.append(f"{path.name}:{node.lineno} {identifier}")
    assert not found, found
    js = (ROOT / "studio" / "app" / "culling.js").read_text()
    assert not [n for n in names if f'"{n}"' in js or f"'{n}'" in js]


def test_media_register_through_entry_points_only():
    from importlib.metadata import entry_points

    registered = {ep.name for ep in entry_points(group="studio.media")}
    assert {"image", "text", "music"} <= registered
    assert not hasattr(media, "BUILTIN")
    classes = media.classes()
    assert list(classes) == sorted(classes, key=lambda n: (classes[n].order, n))
    for name, cls in classes.items():
        assert cls.placeholder and cls.export_formats and all(cls.export_formats.values())
        assert (cls.generate_settings.names() is not None) and cls.tune_settings.names()
