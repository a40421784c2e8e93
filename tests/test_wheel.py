"""The package installs as a package: a wheel built from the checkout, installed into a fresh environment
away from the source tree, generates in every medium and serves the page (CI runs this)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from studio import media

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = {"image": "a red circle", "text": "a haiku about the sea", "music": "a gentle lullaby"}


def installed_media() -> dict[str, type]:
    """The media the package installs (its entry points), not ones other tests registered in this process."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="studio.media")}
    return {name: cls for name, cls in media.classes().items() if name in names}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment holding only the wheel; the libraries it needs (torch, diffusers...) are
    read from this environment's site-packages through a path file (its .pth files, so its editable studio,
    are not read), so nothing is downloaded."""
    where = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(where / "dist"), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "BuildBackendWarning" not in built.stderr and "deprecated" not in built.stderr.lower(), built.stderr
    (wheel,) = (where / "dist").glob("studio-*.whl")
    env = where / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def run_studio(env: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(env / "bin" / "studio"), *argv], capture_output=True, text=True, cwd=cwd,
                          env={**clean, "STUDIO_HOME": str(cwd / "ws")}, timeout=600)


@pytest.mark.slow
def test_the_wheel_generates_in_every_medium_away_from_the_source_tree(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import studio; print(studio.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert str(installed) in where.stdout and str(ROOT) not in where.stdout, where.stdout + where.stderr
    for medium in installed_media():
        done = run_studio(installed, tmp_path, "generate", medium, "--prompt", PROMPTS.get(medium, "something"),
                          "-n", "2", "--json")
        assert done.returncode == 0, f"{medium}: {done.stderr[-2000:]}"
        result = json.loads(done.stdout)
        assert len(result["candidates"]) == 2 and all(Path(c["path"]).stat().st_size > 0 for c in result["candidates"])
        assert str(ROOT) not in result["model"]  # the built-in model came from the installed package
    assert not list(ROOT.glob("studio/media/*/assets/*.tmp*"))


@pytest.mark.slow
def test_the_wheel_serves_the_page(installed, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    server = subprocess.Popen([str(installed / "bin" / "studio"), "serve", "--port", str(port)], cwd=tmp_path,
                              env={**clean, "STUDIO_HOME": str(tmp_path / "ws")}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        line = ""
        while time.monotonic() < deadline and "Studio running at" not in line:
            line = server.stdout.readline()
            assert line or server.poll() is None, "studio serve stopped before it answered"
        assert "Studio running at" in line
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read().decode()
        assert "<title>Studio</title>" in page or "Studio" in page
        config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=60).read())
        labels = {c.get("props", {}).get("label") for c in config["components"]}
        assert {cls.title() for cls in installed_media().values()} <= labels
    finally:
        server.terminate()
        server.wait(timeout=60)
